/*
 * chat.js — the chat widget: the bubble with its unread badge, the room list and a conversation.
 *
 * Data: GET /api/chat/rooms (the list and the badge), the socket (window.realtime) for everything
 * live, GET /api/chat/messages?before= for older history. The open conversation's room is joined
 * (`join_room`) and left when it closes, so rooms not on screen keep getting `unread` counts.
 *
 * Delivery: a message shows at once as "sending" under a crypto.randomUUID() clientId, is
 * confirmed by its `ack`, and fails (error frame with that ref, or no ack within 10 s) into
 * "Failed — Retry", which resends with the same clientId (the server stores it once). Messages
 * dedupe by id. Each `message` carries `prevId`: a gap, or a reconnect, triggers `sync` from the
 * largest id shown, merged by id.
 *
 * Everything users wrote goes into the page through textContent / createElement only.
 */
(function () {
  "use strict";

  var rt = window.realtime;
  var root = document.getElementById("chat");
  if (!rt || !root) return;

  var ACK_TIMEOUT_MS = 10000;
  var TYPING_EVERY_MS = 1000;
  var TYPIST_TTL_MS = 3000;
  var OLDER_PAGE = 30;
  var GROUP_WINDOW_MS = 5 * 60 * 1000;

  var body = document.body;
  var me = Number(body.dataset.userId);
  var isStaff = body.dataset.staff === "1";

  var $ = function (id) { return document.getElementById(id); };
  var fab = $("chat-button");
  var badge = $("chat-badge");
  var panel = $("chat-panel");
  var title = $("chat-title");
  var subtitle = $("chat-subtitle");
  var headAvatar = $("chat-head-avatar");
  var backBtn = $("chat-back");
  var closeBtn = $("chat-close");
  var roomsView = $("chat-rooms");
  var roomList = $("chat-room-list");
  var roomsEmpty = $("chat-rooms-empty");
  var roomsFoot = $("chat-rooms-foot");
  var newSupportBtn = $("chat-new-support");
  var convView = $("chat-conv");
  var topicEl = $("chat-topic");
  var scroller = $("chat-scroll");
  var olderEl = $("chat-older");
  var log = $("chat-log");
  var typingEl = $("chat-typing");
  var form = $("chat-compose");
  var input = $("chat-input");

  var DEFAULT_SUBTITLE = subtitle.textContent;

  var rooms = new Map(); // roomId -> Room (REST shape)
  var roomOrder = []; // ids, most recent activity first
  var current = null; // the open conversation's state
  var joined = new Set(); // rooms this socket has joined (the open one)
  var typists = new Map(); // roomId -> Map(userId -> {user, expires})
  var pending = new Map(); // clientId -> {roomId, text, el, timer}
  var roomsLoaded = false;
  var refreshTimer = null;

  // --- Small helpers ---------------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fullName(user) {
    return window.presence ? window.presence.fullName(user) : ((user.firstName || "") + " " + (user.lastName || "")).trim();
  }

  function firstName(user) {
    return (user.firstName || user.lastName || "Someone").trim();
  }

  function initials(name) {
    var parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
    var letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || "?").slice(0, 2);
    return Array.from(letters).slice(0, 2).join("").toUpperCase();
  }

  function hue(seed) {
    var n = Number(seed) || 0;
    return (n * 67 + 170) % 360;
  }

  function avatar(name, seed, size) {
    var node = el("span", "chat-avatar chat-avatar-" + (size || "md"), initials(name));
    node.style.setProperty("--hue", String(hue(seed)));
    node.setAttribute("aria-hidden", "true");
    return node;
  }

  function presenceDot(userId, name, size) {
    return window.presence ? window.presence.dot(userId, name, { size: size || "sm" }) : el("span");
  }

  function timeOf(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    var now = new Date();
    var sameDay = date.toDateString() === now.toDateString();
    return sameDay
      ? date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })
      : date.toLocaleDateString(undefined, { day: "numeric", month: "short" });
  }

  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    return "c-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    var field = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return field ? field.value : "";
  }

  function api(method, url, data) {
    var options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (data !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = csrfToken();
      options.body = JSON.stringify(data);
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok) {
          var error = new Error((json && json.detail) || "Request failed (" + response.status + ")");
          error.status = response.status;
          throw error;
        }
        return json;
      });
    });
  }

  function isVisible() {
    return !panel.hidden && document.visibilityState === "visible";
  }

  // --- Rooms: names, the list, the badge ---------------------------------------------------------

  function otherMember(room) {
    var members = room.members || [];
    for (var i = 0; i < members.length; i++) {
      if (Number(members[i].id) !== me) return members[i];
    }
    return null;
  }

  /** The person a room is "with": a direct room's other member, a support room's traveller (staff). */
  function roomPeer(room) {
    if (room.kind === "direct") return otherMember(room);
    if (room.kind === "support" && isStaff) return otherMember(room);
    return null;
  }

  function roomTitle(room) {
    var peer = roomPeer(room);
    if (peer && fullName(peer)) return fullName(peer);
    if (room.kind === "support") return room.ownerId && room.ownerId !== me && isStaff ? "Traveller" : "Support";
    if (room.kind === "direct") return "Direct message";
    return room.name || "Conversation";
  }

  function roomIcon(room) {
    var peer = roomPeer(room);
    var wrap = el("span", "chat-room-avatar");
    if (peer) {
      wrap.appendChild(avatar(fullName(peer), peer.id, "md"));
      wrap.appendChild(presenceDot(peer.id, fullName(peer), "sm"));
    } else if (room.kind === "support") {
      var mark = el("span", "chat-avatar chat-avatar-md chat-avatar-brand");
      mark.setAttribute("aria-hidden", "true");
      mark.appendChild(supportGlyph());
      wrap.appendChild(mark);
    } else {
      var a = avatar(roomTitle(room), room.id + 7, "md");
      a.classList.add("chat-avatar-group");
      wrap.appendChild(a);
    }
    return wrap;
  }

  function supportGlyph() {
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 32 32");
    svg.setAttribute("width", "22");
    svg.setAttribute("height", "22");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", "M7 21l6-9 4 6 3-4 5 7z");
    path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    return svg;
  }

  function previewOf(room) {
    var last = room.lastMessage;
    if (!last) return room.kind === "support" && !isStaff ? "Ask us anything about your trips" : "No messages yet";
    var who = Number(last.userId) === me ? "You: " : (room.kind === "direct" ? "" : firstName(last.user) + ": ");
    return who + String(last.message).replace(/\s+/g, " ").trim();
  }

  function setRooms(list) {
    roomOrder = [];
    var seen = new Set();
    list.forEach(function (room) {
      var known = rooms.get(room.id);
      // The open room's count is ours to keep at 0 while it is on screen.
      if (current && current.roomId === room.id && isVisible()) room.unreadCount = 0;
      rooms.set(room.id, Object.assign(known || {}, room));
      roomOrder.push(room.id);
      seen.add(room.id);
    });
    rooms.forEach(function (_, id) { if (!seen.has(id) && !(current && current.roomId === id)) rooms.delete(id); });
    roomsLoaded = true;
    renderRooms();
    renderBadge();
  }

  function loadRooms() {
    return api("GET", "/api/chat/rooms").then(function (data) {
      setRooms(data.results || []);
    }).catch(function (error) {
      console.warn("chat: could not load rooms", error);
    });
  }

  function refreshRoomsSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(loadRooms, 400);
  }

  function upsertRoom(room) {
    var known = rooms.get(room.id);
    rooms.set(room.id, Object.assign(known || {}, room));
    if (roomOrder.indexOf(room.id) === -1) roomOrder.unshift(room.id);
    renderRooms();
    renderBadge();
    return rooms.get(room.id);
  }

  function bumpRoom(roomId) {
    var index = roomOrder.indexOf(roomId);
    if (index > 0) {
      roomOrder.splice(index, 1);
      roomOrder.unshift(roomId);
    }
  }

  function renderRooms() {
    var focusedId = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.roomId : null;
    roomList.replaceChildren();
    var hasSupport = false;
    roomOrder.forEach(function (id) {
      var room = rooms.get(id);
      if (!room) return;
      if (room.kind === "support" && room.ownerId === me) hasSupport = true;
      var li = el("li", "chat-room-item");
      var button = el("button", "chat-room");
      button.type = "button";
      button.dataset.roomId = String(room.id);
      var nameId = "chat-room-name-" + room.id;
      var descId = "chat-room-desc-" + room.id;
      // Named by the room's name alone; the preview and the count describe it.
      button.setAttribute("aria-labelledby", nameId);
      button.setAttribute("aria-describedby", descId);
      button.appendChild(roomIcon(room));
      var text = el("span", "chat-room-text");
      var top = el("span", "chat-room-top");
      var name = el("span", "chat-room-name", roomTitle(room));
      name.id = nameId;
      top.appendChild(name);
      if (room.lastMessage) {
        var when = el("time", "chat-room-time", timeOf(room.lastMessage.createdAt));
        when.dateTime = room.lastMessage.createdAt;
        top.appendChild(when);
      }
      text.appendChild(top);
      var bottom = el("span", "chat-room-bottom");
      bottom.id = descId;
      var preview = el("span", "chat-room-preview", previewOf(room));
      bottom.appendChild(preview);
      if (room.unreadCount > 0) {
        var count = el("span", "chat-room-unread", room.unreadCount > 99 ? "99+" : room.unreadCount);
        count.setAttribute("aria-label", room.unreadCount + " unread");
        bottom.appendChild(count);
        button.classList.add("has-unread");
      }
      text.appendChild(bottom);
      button.appendChild(text);
      button.addEventListener("click", function () { openRoom(room.id); });
      li.appendChild(button);
      roomList.appendChild(li);
    });
    var empty = roomOrder.length === 0;
    roomsEmpty.hidden = !(roomsLoaded && empty);
    roomsFoot.hidden = !roomsLoaded || isStaff || hasSupport;
    roomList.hidden = empty;
    if (focusedId) {
      var again = roomList.querySelector('[data-room-id="' + focusedId + '"]');
      if (again) again.focus();
    }
  }

  function renderBadge() {
    var total = 0;
    rooms.forEach(function (room) { total += Math.max(0, Number(room.unreadCount) || 0); });
    badge.textContent = total > 0 ? (total > 99 ? "99+" : String(total)) : "";
    badge.hidden = total === 0;
    fab.setAttribute("aria-description", total > 0 ? total + " unread" : "");
  }

  function setUnread(roomId, count) {
    var room = rooms.get(roomId);
    if (!room) {
      refreshRoomsSoon();
      return;
    }
    var changed = room.unreadCount !== count;
    room.unreadCount = count;
    renderRooms();
    renderBadge();
    // A new message elsewhere: its preview and the order come with the list.
    if (changed && count > 0) refreshRoomsSoon();
  }

  // --- The panel ---------------------------------------------------------------------------------

  function openPanel() {
    if (!panel.hidden) return;
    panel.hidden = false;
    root.classList.add("is-open");
    body.classList.add("chat-open");
    fab.setAttribute("aria-expanded", "true");
    if (current) {
      markRead();
      input.focus();
    } else {
      showList();
      loadRooms().then(function () { focusFirstRoom(); });
      focusFirstRoom();
    }
  }

  function closePanel() {
    if (panel.hidden) return;
    panel.hidden = true;
    root.classList.remove("is-open");
    body.classList.remove("chat-open");
    fab.setAttribute("aria-expanded", "false");
    stopTyping();
    fab.focus();
  }

  function focusFirstRoom() {
    if (panel.hidden || current) return;
    if (panel.contains(document.activeElement) && document.activeElement !== closeBtn) return;
    var first = roomList.querySelector("button") || (roomsFoot.hidden ? closeBtn : newSupportBtn);
    first.focus();
  }

  function showList() {
    var previous = current ? current.roomId : null;
    leaveCurrent();
    convView.hidden = true;
    roomsView.hidden = false;
    backBtn.hidden = true;
    headAvatar.hidden = true;
    headAvatar.replaceChildren();
    title.textContent = "Messages";
    subtitle.textContent = DEFAULT_SUBTITLE;
    panel.classList.remove("is-conversation");
    renderRooms();
    if (previous !== null) {
      var button = roomList.querySelector('[data-room-id="' + previous + '"]');
      if (button) button.focus();
    }
  }

  fab.addEventListener("click", function () {
    if (panel.hidden) openPanel();
    else closePanel();
  });
  closeBtn.addEventListener("click", closePanel);
  backBtn.addEventListener("click", function () {
    showList();
    loadRooms();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || panel.hidden || event.defaultPrevented) return;
    var active = document.activeElement;
    if (!active || active === body || root.contains(active)) {
      event.preventDefault();
      closePanel();
    }
  });
  newSupportBtn.addEventListener("click", function () { openSupport(null); });

  // --- A conversation ----------------------------------------------------------------------------

  function newConversation(roomId) {
    return {
      roomId: roomId,
      byId: new Map(), // message id -> li
      largest: 0, // the largest message id shown
      oldest: null, // the smallest, for `before`
      hasMore: false,
      loadingOlder: false,
      lastMarked: 0,
      joinedOnce: false,
      lastTypingSent: 0,
      typing: false,
    };
  }

  function openRoom(roomId) {
    roomId = Number(roomId);
    if (current && current.roomId === roomId) {
      if (panel.hidden) openPanel();
      return;
    }
    leaveCurrent();
    current = newConversation(roomId);
    log.replaceChildren();
    typingEl.replaceChildren();
    olderEl.hidden = true;
    roomsView.hidden = true;
    convView.hidden = false;
    backBtn.hidden = false;
    panel.classList.add("is-conversation");
    renderHeader();
    renderTopic();
    var loading = el("li", "chat-loading", "Loading conversation…");
    log.appendChild(loading);
    if (panel.hidden) openPanel();
    joined.add(roomId);
    rt.send({ type: "join_room", roomId: roomId });
    input.value = draftOf(roomId);
    autosize();
    input.focus();
  }

  function leaveCurrent() {
    if (!current) return;
    stopTyping();
    saveDraft();
    rt.send({ type: "leave_room", roomId: current.roomId });
    joined.delete(current.roomId);
    current = null;
  }

  var drafts = new Map();
  function draftOf(roomId) { return drafts.get(roomId) || ""; }
  function saveDraft() { if (current) drafts.set(current.roomId, input.value); }

  function renderHeader() {
    var room = current && rooms.get(current.roomId);
    headAvatar.replaceChildren();
    if (!room) {
      title.textContent = "Conversation";
      subtitle.textContent = "";
      headAvatar.hidden = true;
      return;
    }
    title.textContent = roomTitle(room);
    headAvatar.hidden = false;
    headAvatar.appendChild(roomIcon(room));
    renderSubtitle();
  }

  function renderSubtitle() {
    var room = current && rooms.get(current.roomId);
    if (!room) return;
    var peer = roomPeer(room);
    subtitle.replaceChildren();
    if (peer && window.presence) {
      var state = window.presence.get(peer.id);
      var dot = presenceDot(peer.id, fullName(peer), "sm");
      subtitle.appendChild(dot);
      var text = !state ? "" : state.isOnline ? "Online" : state.lastSeenAt ? "Last seen " + window.presence.ago(state.lastSeenAt) : "Offline";
      subtitle.appendChild(el("span", "", text));
    } else if (room.kind === "support") {
      subtitle.textContent = isStaff ? "Support conversation" : "The Wanderly travel team";
    } else if (room.kind === "group") {
      subtitle.textContent = room.description || "Tour group";
    } else {
      subtitle.textContent = room.description || "Public room";
    }
  }

  function renderTopic() {
    var room = current && rooms.get(current.roomId);
    var topic = room && room.topic;
    topicEl.replaceChildren();
    topicEl.hidden = !topic;
    if (!topic) return;
    topicEl.appendChild(el("span", "chat-topic-kind", topic.type === "booking" ? "About your booking" : "About the tour"));
    if (topic.type === "tour") {
      var link = el("a", "chat-topic-name", topic.name || "Tour #" + topic.id);
      link.href = "/tours/" + Number(topic.id) + "/";
      topicEl.appendChild(link);
    } else {
      topicEl.appendChild(el("span", "chat-topic-name", topic.name || "Booking #" + topic.id));
    }
  }

  // Messages --------------------------------------------------------------------------------------

  function isOwn(message) { return Number(message.userId) === me; }

  function buildMessage(message, state) {
    var own = isOwn(message);
    var li = el("li", "chat-msg" + (own ? " is-own" : ""));
    if (message.id) li.dataset.id = String(message.id);
    if (message.clientId) li.dataset.clientId = message.clientId;
    li.dataset.userId = String(message.userId);
    li.dataset.time = message.createdAt || "";
    var name = fullName(message.user || {}) || "Someone";

    var side = el("span", "chat-msg-avatar");
    if (!own) {
      side.appendChild(avatar(name, message.userId, "sm"));
      side.appendChild(presenceDot(message.userId, name, "sm"));
    }
    li.appendChild(side);

    var content = el("div", "chat-msg-content");
    var sender = el("span", "chat-msg-sender", own ? "You" : name);
    content.appendChild(sender);
    var bubble = el("p", "chat-bubble", message.message);
    content.appendChild(bubble);
    var meta = el("span", "chat-msg-meta");
    content.appendChild(meta);
    li.appendChild(content);
    setMessageState(li, state || "sent", message);
    return li;
  }

  function setMessageState(li, state, message) {
    li.classList.toggle("is-sending", state === "sending");
    li.classList.toggle("is-failed", state === "failed");
    var meta = li.querySelector(".chat-msg-meta");
    meta.replaceChildren();
    if (state === "sending") {
      meta.appendChild(el("span", "chat-msg-status", "Sending…"));
    } else if (state === "failed") {
      meta.appendChild(el("span", "chat-msg-status", "Failed — "));
      var retry = el("button", "chat-retry", "Retry");
      retry.type = "button";
      retry.addEventListener("click", function () { resend(li.dataset.clientId); });
      meta.appendChild(retry);
    } else if (message && message.createdAt) {
      var time = el("time", "", timeOf(message.createdAt));
      time.dateTime = message.createdAt;
      time.title = new Date(message.createdAt).toLocaleString();
      meta.appendChild(time);
    }
  }

  /** Consecutive messages of one sender within a few minutes are grouped (one name, one avatar). */
  function regroup(li) {
    [li, li && li.nextElementSibling].forEach(function (node) {
      if (!node || !node.classList.contains("chat-msg")) return;
      var prev = node.previousElementSibling;
      var gap = Math.abs(Date.parse(node.dataset.time || "") - Date.parse((prev && prev.dataset.time) || ""));
      var same = Boolean(prev && prev.classList.contains("chat-msg") &&
        prev.dataset.userId === node.dataset.userId && gap < GROUP_WINDOW_MS);
      node.classList.toggle("is-continued", same);
    });
  }

  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  function clearLoading() {
    var loading = log.querySelector(".chat-loading");
    if (loading) loading.remove();
  }

  /**
   * Put a stored message in its place (by id; pending ones stay last). Returns false if shown.
   * Our own pending message takes its place still "Sending…": only its `ack` makes it sent (the
   * server broadcasts once the message is committed, and acks once that is on disk).
   */
  function insertMessage(message) {
    if (!current || message.roomId !== current.roomId) return false;
    if (current.byId.has(message.id)) return false;
    var li;
    var mine = message.clientId && isOwn(message) ? pending.get(message.clientId) : null;
    if (mine && mine.el && mine.el.isConnected) {
      // Our own message: the same element, in its place.
      li = mine.el;
      li.remove();
      li.dataset.id = String(message.id);
      li.dataset.time = message.createdAt;
    } else {
      var shown = message.clientId ? log.querySelector('[data-client-id="' + CSS.escape(message.clientId) + '"]') : null;
      if (shown && isOwn(message)) {
        li = shown;
        li.remove();
        li.dataset.id = String(message.id);
        setMessageState(li, "sent", message);
        if (pending.has(message.clientId)) {
          clearTimeout(pending.get(message.clientId).timer);
          pending.delete(message.clientId);
        }
      } else {
        li = buildMessage(message, "sent");
      }
    }
    var before = null;
    var children = log.children;
    for (var i = 0; i < children.length; i++) {
      var child = children[i];
      if (!child.classList.contains("chat-msg")) continue;
      var id = Number(child.dataset.id || 0);
      if (!child.dataset.id || id > message.id) { before = child; break; }
    }
    log.insertBefore(li, before);
    current.byId.set(message.id, li);
    if (message.id > current.largest) current.largest = message.id;
    if (current.oldest === null || message.id < current.oldest) current.oldest = message.id;
    regroup(li);
    return true;
  }

  function mergeMessages(messages, options) {
    if (!current) return 0;
    var stick = options && options.stick !== undefined ? options.stick : nearBottom();
    var added = 0;
    clearLoading();
    messages.forEach(function (m) { if (insertMessage(m)) added += 1; });
    renderEmptyConversation();
    if (stick) scrollToBottom();
    return added;
  }

  function renderEmptyConversation() {
    var empty = log.querySelector(".chat-empty-conv");
    var hasMessages = log.querySelector(".chat-msg");
    if (hasMessages && empty) empty.remove();
    if (!hasMessages && !empty && !log.querySelector(".chat-loading")) {
      var room = current && rooms.get(current.roomId);
      var text = room && room.kind === "support" && !isStaff
        ? "Hi! Ask us anything about your trips — we usually reply within a few minutes."
        : "No messages yet. Say hello!";
      log.appendChild(el("li", "chat-empty-conv", text));
    }
  }

  function newestId() {
    return current ? current.largest : 0;
  }

  function markRead() {
    if (!current || !isVisible()) return;
    var newest = newestId();
    var room = rooms.get(current.roomId);
    if (room && room.unreadCount) {
      room.unreadCount = 0;
      renderBadge();
    }
    if (newest > current.lastMarked) {
      current.lastMarked = newest;
      rt.send({ type: "mark_read", roomId: current.roomId, messageId: newest });
    }
  }

  function loadOlder() {
    if (!current || !current.hasMore || current.loadingOlder || current.oldest === null) return;
    var state = current;
    state.loadingOlder = true;
    olderEl.hidden = false;
    var url = "/api/chat/messages?roomId=" + state.roomId + "&before=" + state.oldest + "&limit=" + OLDER_PAGE;
    api("GET", url).then(function (data) {
      if (current !== state) return;
      var previousHeight = scroller.scrollHeight;
      var previousTop = scroller.scrollTop;
      (data.results || []).forEach(function (m) { insertMessage(m); });
      state.hasMore = Boolean(data.hasMore);
      // Keep what the reader was looking at where it was.
      scroller.scrollTop = previousTop + (scroller.scrollHeight - previousHeight);
    }).catch(function (error) {
      console.warn("chat: could not load older messages", error);
    }).finally(function () {
      state.loadingOlder = false;
      if (current === state) olderEl.hidden = true;
    });
  }

  scroller.addEventListener("scroll", function () {
    if (scroller.scrollTop < 120) loadOlder();
  }, { passive: true });

  // Sending -------------------------------------------------------------------------------------------

  function sendFrame(entry) {
    clearTimeout(entry.timer);
    rt.send({ type: "send_message", roomId: entry.roomId, message: entry.text, clientId: entry.clientId });
    entry.timer = setTimeout(function () { failed(entry.clientId); }, ACK_TIMEOUT_MS);
  }

  function send(text) {
    if (!current) return;
    var clientId = uuid();
    var message = {
      id: null,
      message: text,
      roomId: current.roomId,
      userId: me,
      clientId: clientId,
      createdAt: new Date().toISOString(),
      user: { id: me, firstName: "", lastName: "" },
    };
    var li = buildMessage(message, "sending");
    clearLoading();
    log.appendChild(li);
    regroup(li);
    renderEmptyConversation();
    scrollToBottom();
    var entry = { clientId: clientId, roomId: current.roomId, text: text, el: li, timer: null };
    pending.set(clientId, entry);
    sendFrame(entry);
  }

  function failed(clientId) {
    var entry = pending.get(clientId);
    if (!entry) return;
    clearTimeout(entry.timer);
    if (entry.el) setMessageState(entry.el, "failed");
  }

  function resend(clientId) {
    var entry = pending.get(clientId);
    if (!entry) return;
    setMessageState(entry.el, "sending");
    sendFrame(entry);
  }

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 140) + "px";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim() || !current) return;
    stopTyping();
    send(text);
    input.value = "";
    drafts.delete(current.roomId);
    autosize();
    input.focus();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // Typing (ours) -------------------------------------------------------------------------------------

  input.addEventListener("input", function () {
    autosize();
    if (!current) return;
    if (!input.value.trim()) {
      stopTyping();
      return;
    }
    var now = Date.now();
    if (now - current.lastTypingSent >= TYPING_EVERY_MS) {
      current.lastTypingSent = now;
      current.typing = true;
      rt.send({ type: "typing_start", roomId: current.roomId });
    }
  });
  input.addEventListener("blur", function () { stopTyping(); });

  function stopTyping() {
    if (!current || !current.typing) return;
    current.typing = false;
    current.lastTypingSent = 0;
    rt.send({ type: "typing_stop", roomId: current.roomId });
  }

  // Typing (others) -----------------------------------------------------------------------------------

  function setTypists(roomId, users) {
    var now = Date.now();
    var map = new Map();
    (users || []).forEach(function (user) {
      if (Number(user.id) === me) return;
      map.set(Number(user.id), { user: user, expires: now + TYPIST_TTL_MS });
    });
    typists.set(roomId, map);
    renderTyping();
  }

  function renderTyping() {
    if (!current) {
      typingEl.replaceChildren();
      return;
    }
    var map = typists.get(current.roomId);
    var now = Date.now();
    var users = [];
    if (map) {
      map.forEach(function (entry, id) {
        if (entry.expires <= now) map.delete(id);
        else users.push(entry.user);
      });
    }
    var text = "";
    if (users.length === 1) text = firstName(users[0]) + " is typing...";
    else if (users.length === 2) text = firstName(users[0]) + " and " + firstName(users[1]) + " are typing...";
    else if (users.length > 2) text = users.length + " people are typing...";
    var shown = typingEl.querySelector(".chat-typing-text");
    if ((shown ? shown.textContent : "") === text) return;
    typingEl.replaceChildren();
    if (!text) return;
    var dots = el("span", "chat-typing-dots");
    dots.setAttribute("aria-hidden", "true");
    dots.append(el("i"), el("i"), el("i"));
    typingEl.append(dots, el("span", "chat-typing-text", text));
  }

  setInterval(renderTyping, 500);

  // --- Socket events ---------------------------------------------------------------------------------

  rt.on("room_joined", function (frame) {
    var room = upsertRoom(frame.room);
    if (!current || current.roomId !== room.id) return;
    var first = !current.joinedOnce;
    current.joinedOnce = true;
    if (first) current.hasMore = Boolean(frame.hasMore);
    renderHeader();
    renderTopic();
    mergeMessages(frame.messages || [], { stick: first || nearBottom() });
    if (first) {
      scrollToBottom();
      // A short history may not fill the view: nothing to scroll, so fetch more now.
      if (current.hasMore && scroller.scrollHeight <= scroller.clientHeight + 120) loadOlder();
    }
    markRead();
  });

  rt.on("message", function (frame) {
    var message = frame.message;
    if (!message) return;
    var roomId = message.roomId;
    var room = rooms.get(roomId);
    if (room) {
      room.lastMessage = message;
      bumpRoom(roomId);
    }
    if (current && current.roomId === roomId) {
      var known = current.byId.has(message.id);
      var prevId = frame.prevId;
      if (!known && current.joinedOnce && typeof prevId === "number" && prevId > current.largest) {
        // Missed at least one event: fetch what came after what we have.
        rt.send({ type: "sync", roomId: roomId, afterId: current.largest });
      }
      var stick = nearBottom() || isOwn(message);
      mergeMessages([message], { stick: stick });
      if (!known && !isOwn(message)) {
        if (isVisible()) markRead();
        else if (room) room.unreadCount = (room.unreadCount || 0) + 1;
      }
      // Whoever sent a message has stopped typing.
      var map = typists.get(roomId);
      if (map && map.delete(Number(message.userId))) renderTyping();
    } else if (!room) {
      refreshRoomsSoon();
    }
    renderRooms();
    renderBadge();
  });

  rt.on("ack", function (frame) {
    var message = frame.message;
    if (!message) return;
    var entry = pending.get(frame.clientId);
    if (current && current.roomId === message.roomId) mergeMessages([message], { stick: true });
    if (entry) {
      clearTimeout(entry.timer);
      pending.delete(frame.clientId);
      if (entry.el) setMessageState(entry.el, "sent", message);
    }
    var room = rooms.get(message.roomId);
    if (room) {
      room.lastMessage = message;
      bumpRoom(message.roomId);
      renderRooms();
    }
    // Our own message is read: keep the marker at the end so we are not "away" from the room.
    if (current && current.roomId === message.roomId) markRead();
  });

  rt.on("error", function (frame) {
    if (frame.ref && pending.has(frame.ref)) {
      failed(frame.ref);
      return;
    }
    if (frame.ref === "join_room" && current && !current.joinedOnce) {
      clearLoading();
      log.replaceChildren(el("li", "chat-empty-conv", "This conversation is not available."));
    }
  });

  rt.on("history", function (frame) {
    if (!current || current.roomId !== frame.roomId) return;
    var messages = frame.messages || [];
    mergeMessages(messages);
    if (frame.hasMore && messages.length) {
      rt.send({ type: "sync", roomId: frame.roomId, afterId: messages[messages.length - 1].id });
    }
    markRead();
  });

  rt.on("typing", function (frame) { setTypists(frame.roomId, frame.users); });

  rt.on("unread", function (frame) { setUnread(frame.roomId, frame.unreadCount); });

  rt.on("read", function () { /* read receipts: not shown yet */ });

  rt.on("message_hidden", function (frame) {
    if (!current || current.roomId !== frame.roomId) return;
    var li = current.byId.get(frame.messageId);
    if (li) {
      li.remove();
      current.byId.delete(frame.messageId);
    }
  });

  rt.on("open", function (info) {
    if (!info || !info.reconnected) return;
    // A new socket: join the open room again and fetch what was said meanwhile.
    joined.forEach(function (roomId) {
      rt.send({ type: "join_room", roomId: roomId });
      if (current && current.roomId === roomId && current.largest) {
        rt.send({ type: "sync", roomId: roomId, afterId: current.largest });
      }
    });
    pending.forEach(function (entry) {
      if (entry.el && entry.el.classList.contains("is-sending")) sendFrame(entry);
    });
    loadRooms();
  });

  if (window.presence) {
    window.presence.on(function (userId) {
      var room = current && rooms.get(current.roomId);
      var peer = room && roomPeer(room);
      if (peer && Number(peer.id) === userId) renderSubtitle();
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") markRead();
  });

  // --- Support entry: "Ask us about this tour / booking" ----------------------------------------------

  function openSupport(topic) {
    var payload = { kind: "support" };
    if (topic) payload.topic = topic;
    return api("POST", "/api/chat/rooms", payload).then(function (room) {
      upsertRoom(room);
      if (current && current.roomId === room.id) {
        renderTopic();
        if (panel.hidden) openPanel();
        input.focus();
      } else {
        openRoom(room.id);
      }
      return room;
    }).catch(function (error) {
      console.warn("chat: could not open the support room", error);
      openPanel();
    });
  }

  document.addEventListener("click", function (event) {
    var trigger = event.target.closest && event.target.closest("[data-chat-topic-type]");
    if (!trigger) return;
    event.preventDefault();
    var id = Number(trigger.dataset.chatTopicId);
    openSupport({ type: trigger.dataset.chatTopicType, id: id });
  });

  // --- Start -----------------------------------------------------------------------------------------

  window.chatWidget = { open: openPanel, close: closePanel, openRoom: openRoom, openSupport: openSupport };

  var opened = false;
  rt.whenLive(function () {
    loadRooms().then(function () {
      if (opened) return;
      opened = true;
      // Notification links point at /?room=<id>: open that conversation.
      var params = new URLSearchParams(location.search);
      var roomId = Number(params.get("room"));
      if (roomId > 0) openRoom(roomId);
    });
  });
})();
