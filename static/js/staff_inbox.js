/*
 * staff_inbox.js — the staff support inbox (/staff/inbox/), live.
 *
 * The room list starts from the page's JSON (#inbox-rooms) and follows `support_message
 * {room, message}`, which every staff socket gets for every support-room message: a new room
 * appears, a room with a new traveller message moves up marked "waiting", a staff answer
 * clears it. The open conversation loads over REST (GET /api/chat/messages), is joined with
 * `join_room` for its `message` events (merged by id), and replies go out as `send_message`
 * with a clientId (REST POST when the socket is down). Beside it: the traveller's bookings.
 *
 * Server data is rendered with textContent/createElement only.
 */
(function () {
  "use strict";

  var root = document.getElementById("inbox");
  if (!root) return;

  var MESSAGES_API = "/api/chat/messages";
  var PAGE = 50;
  var TICK_MS = 30000;

  var listEl = document.getElementById("inbox-list");
  var emptyEl = document.getElementById("inbox-empty");
  var summaryEl = document.getElementById("inbox-summary");
  var placeholder = document.getElementById("inbox-placeholder");
  var thread = document.getElementById("inbox-thread");
  var titleEl = document.getElementById("inbox-conversation-heading");
  var metaEl = document.getElementById("inbox-thread-meta");
  var stateEl = document.getElementById("inbox-thread-state");
  var logEl = document.getElementById("inbox-log");
  var olderBtn = document.getElementById("inbox-older");
  var form = document.getElementById("inbox-reply");
  var textarea = document.getElementById("inbox-reply-text");
  var sendBtn = document.getElementById("inbox-reply-send");
  var errorEl = document.getElementById("inbox-reply-error");
  var backBtn = document.getElementById("inbox-back");
  var bookingsAside = document.getElementById("inbox-bookings");
  var bookingList = document.getElementById("inbox-booking-list");
  var bookingsEmpty = document.getElementById("inbox-bookings-empty");

  var rooms = new Map(); // id → room (Room shape + owner + topic)
  var items = new Map(); // id → <li>
  var selectedId = null;
  var messages = new Map(); // id → Message, for the open room
  var pending = new Map(); // clientId → {text, node}
  var hasOlder = false;
  var selectToken = 0;

  // --- Helpers ---------------------------------------------------------------------------

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function request(method, url, body) {
    var init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (method !== "GET") init.headers["X-CSRFToken"] = cookie("csrftoken");
    return fetch(url, init).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error((data && data.detail) || method + " " + url + " → " + response.status);
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function clientId() {
    if (window.crypto && crypto.randomUUID) return "inbox-" + crypto.randomUUID();
    return "inbox-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function fullName(user) {
    if (!user) return "";
    return ((user.firstName || "") + " " + (user.lastName || "")).trim();
  }

  function ownerName(room) {
    if (room.owner && room.owner.name) return room.owner.name;
    return "Traveller #" + (room.ownerId || room.id);
  }

  function topicName(room) {
    var topic = room.topic;
    return topic && typeof topic === "object" && typeof topic.name === "string" && topic.name ? topic.name : "";
  }

  function minutesSince(iso) {
    var then = new Date(iso).getTime();
    if (isNaN(then)) return 0;
    return Math.max(0, Math.floor((Date.now() - then) / 60000));
  }

  function duration(minutes) {
    if (minutes < 1) return "<1 min";
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    if (hours < 24) return hours + " h" + (minutes % 60 ? " " + (minutes % 60) + " min" : "");
    var days = Math.floor(hours / 24);
    return days + (days === 1 ? " day" : " days");
  }

  function ago(iso) {
    var minutes = minutesSince(iso);
    if (minutes < 1) return "just now";
    return duration(minutes) + " ago";
  }

  function clock(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    var sameDay = date.toDateString() === new Date().toDateString();
    var time = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    return sameDay ? time : date.toLocaleDateString(undefined, { day: "numeric", month: "short" }) + ", " + time;
  }

  function activityAt(room) {
    return (room.lastMessage && room.lastMessage.createdAt) || room.updatedAt || room.createdAt;
  }

  function waitingLabel(room) {
    return room.awaitingStaffSince ? "waiting " + duration(minutesSince(room.awaitingStaffSince)) : "";
  }

  // --- The room list ---------------------------------------------------------------------------

  function compareRooms(a, b) {
    var aw = a.awaitingStaffSince, bw = b.awaitingStaffSince;
    if (aw && bw) return new Date(aw) - new Date(bw) || a.id - b.id;
    if (aw) return -1;
    if (bw) return 1;
    return new Date(activityAt(b)) - new Date(activityAt(a)) || b.id - a.id;
  }

  function fillItem(li, room) {
    var button = li.firstElementChild;
    button.replaceChildren();
    var top = el("span", "inbox-room-top");
    top.appendChild(el("span", "inbox-avatar", initials(ownerName(room)))).setAttribute("aria-hidden", "true");
    top.appendChild(el("span", "inbox-room-name", ownerName(room)));
    var when = el("span", "inbox-room-when");
    if (room.awaitingStaffSince) {
      when.className += " is-waiting";
      when.textContent = waitingLabel(room);
    } else {
      when.textContent = ago(activityAt(room));
    }
    top.appendChild(when);
    button.appendChild(top);

    if (topicName(room)) button.appendChild(el("span", "inbox-topic", topicName(room)));
    var last = room.lastMessage;
    var preview = el("span", "inbox-preview");
    if (last) {
      if (last.userId !== room.ownerId) {
        preview.appendChild(el("span", "inbox-preview-who", (last.user && last.user.firstName ? last.user.firstName : "Staff") + ": "));
      }
      preview.appendChild(document.createTextNode(last.message));
    } else {
      preview.textContent = "No messages yet";
      preview.classList.add("muted");
    }
    button.appendChild(preview);
    li.classList.toggle("is-waiting", !!room.awaitingStaffSince);
    li.classList.toggle("is-selected", room.id === selectedId);
    if (room.id === selectedId) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
    li.dataset.waiting = room.awaitingStaffSince ? "1" : "0";
  }

  function initials(name) {
    var parts = String(name).split(/\s+/).filter(Boolean);
    var letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : String(name).slice(0, 2);
    return letters.toUpperCase();
  }

  function itemFor(room) {
    var li = items.get(room.id);
    if (!li) {
      li = el("li", "inbox-room");
      li.dataset.roomId = String(room.id);
      var button = el("button", "inbox-room-btn");
      button.type = "button";
      button.addEventListener("click", function () { select(room.id, true); });
      li.appendChild(button);
      items.set(room.id, li);
    }
    fillItem(li, rooms.get(room.id) || room);
    return li;
  }

  function renderList() {
    var sorted = Array.from(rooms.values()).sort(compareRooms);
    sorted.forEach(function (room, index) {
      var li = itemFor(room);
      // Only nodes that change place are moved: the live region then announces just those.
      if (listEl.children[index] !== li) listEl.insertBefore(li, listEl.children[index] || null);
    });
    emptyEl.hidden = sorted.length > 0;
    var waiting = sorted.filter(function (room) { return room.awaitingStaffSince; }).length;
    summaryEl.textContent =
      (waiting ? waiting + " waiting for an answer" : "Nobody is waiting") +
      " · " + sorted.length + (sorted.length === 1 ? " conversation" : " conversations");
    document.title = (waiting ? "(" + waiting + ") " : "") + "Staff inbox · Wanderly Travel";
  }

  function upsertRoom(shape, message) {
    var known = rooms.get(shape.id);
    var room = Object.assign({}, known || {}, shape);
    if (!room.owner && known && known.owner) room.owner = known.owner;
    if (!room.owner && message && message.userId === room.ownerId && message.user) {
      room.owner = { id: message.userId, name: fullName(message.user) || "Traveller #" + message.userId };
    }
    if (!("topic" in shape) && known) room.topic = known.topic;
    rooms.set(room.id, room);
    return room;
  }

  // --- The open conversation -------------------------------------------------------------------

  function renderMessage(message) {
    var room = rooms.get(selectedId);
    var mine = String(message.userId) === document.body.dataset.userId;
    var fromTraveller = room && message.userId === room.ownerId;
    var li = el("li", "inbox-msg " + (fromTraveller ? "from-traveller" : "from-staff") + (mine ? " is-mine" : ""));
    li.dataset.messageId = String(message.id);
    var head = el("p", "inbox-msg-head");
    head.appendChild(el("span", "inbox-msg-who", mine ? "You" : fullName(message.user) || "Staff"));
    if (message.clientId && pending.has(message.clientId)) {
      li.classList.add("is-pending"); // stored, not acknowledged yet
      head.appendChild(el("span", "inbox-msg-time", "sending…"));
    } else {
      var time = el("time", "inbox-msg-time", clock(message.createdAt));
      time.dateTime = message.createdAt;
      head.appendChild(time);
    }
    li.appendChild(head);
    li.appendChild(el("p", "inbox-msg-text", message.message));
    return li;
  }

  function renderLog(scroll) {
    var atBottom = logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 40;
    var sorted = Array.from(messages.values()).sort(function (a, b) { return a.id - b.id; });
    var nodes = sorted.map(renderMessage);
    pending.forEach(function (entry) { if (!entry.stored) nodes.push(entry.node); });
    logEl.replaceChildren.apply(logEl, nodes);
    olderBtn.hidden = !hasOlder;
    if (scroll || atBottom) logEl.scrollTop = logEl.scrollHeight;
  }

  /**
   * Show stored messages (by id). `acked`: our reply's `ack` (or REST answer) brought it. Only
   * that makes a pending reply sent: the room's `message` may come first (the server broadcasts
   * once a message is committed, and acks once that is on disk); it then shows in its place,
   * still "sending…".
   */
  function addMessages(list, acked) {
    var added = false;
    (list || []).forEach(function (message) {
      if (!message || message.roomId !== selectedId) return;
      var entry = message.clientId ? pending.get(message.clientId) : null;
      if (entry && acked) {
        pending.delete(message.clientId);
        added = true;
      } else if (entry) {
        entry.stored = message.id;
      }
      if (!messages.has(message.id)) added = true;
      messages.set(message.id, message);
    });
    if (added) renderLog(false);
    return added;
  }

  function renderThreadHead(room) {
    titleEl.textContent = ownerName(room);
    var bits = [];
    if (room.owner && room.owner.username) bits.push("@" + room.owner.username);
    if (topicName(room)) bits.push("Topic: " + topicName(room));
    metaEl.textContent = bits.join(" · ");
    stateEl.textContent = room.awaitingStaffSince ? waitingLabel(room) : "Answered";
    stateEl.className = "inbox-pill " + (room.awaitingStaffSince ? "is-waiting" : "is-answered");
  }

  function select(roomId, focus) {
    var room = rooms.get(roomId);
    if (!room) return;
    var token = ++selectToken;
    selectedId = roomId;
    messages = new Map();
    pending = new Map();
    hasOlder = false;
    root.classList.add("has-selection");
    placeholder.hidden = true;
    thread.hidden = false;
    errorEl.hidden = true;
    renderThreadHead(room);
    logEl.replaceChildren();
    logEl.setAttribute("aria-busy", "true");
    renderList();
    if (history.replaceState) history.replaceState(null, "", "#room-" + roomId);

    if (window.realtime) window.realtime.send({ type: "join_room", roomId: roomId });
    request("GET", MESSAGES_API + "?roomId=" + roomId + "&limit=" + PAGE)
      .then(function (page) {
        if (token !== selectToken) return;
        hasOlder = !!page.hasMore;
        addMessages(page.results);
        renderLog(true);
        markRead();
      })
      .catch(function (error) { console.warn("inbox: history failed", error); })
      .then(function () { if (token === selectToken) logEl.setAttribute("aria-busy", "false"); });
    loadBookings(room, token);
    if (window.matchMedia("(max-width: 760px)").matches) {
      // One pane at a time on phones: show the conversation from its top.
      document.getElementById("inbox-conversation").scrollIntoView({ block: "start" });
    }
    if (focus) textarea.focus({ preventScroll: true });
  }

  function loadOlder() {
    var first = Array.from(messages.keys()).sort(function (a, b) { return a - b; })[0];
    if (!first) return;
    var token = selectToken;
    var height = logEl.scrollHeight;
    olderBtn.disabled = true;
    request("GET", MESSAGES_API + "?roomId=" + selectedId + "&limit=" + PAGE + "&before=" + first)
      .then(function (page) {
        if (token !== selectToken) return;
        hasOlder = !!page.hasMore;
        addMessages(page.results);
        renderLog(false);
        logEl.scrollTop = logEl.scrollHeight - height;
      })
      .catch(function (error) { console.warn("inbox: older messages failed", error); })
      .then(function () { olderBtn.disabled = false; });
  }

  function markRead() {
    var last = Math.max.apply(null, [0].concat(Array.from(messages.keys())));
    if (last && window.realtime) window.realtime.send({ type: "mark_read", roomId: selectedId, messageId: last });
  }

  // --- Bookings beside the conversation --------------------------------------------------------

  function loadBookings(room, token) {
    bookingsAside.hidden = false;
    bookingList.replaceChildren();
    bookingsEmpty.hidden = true;
    if (!room.ownerId) {
      bookingsEmpty.hidden = false;
      return;
    }
    bookingList.setAttribute("aria-busy", "true");
    request("GET", "/staff/inbox/users/" + room.ownerId + "/bookings")
      .then(function (answer) {
        if (token !== selectToken) return;
        var results = answer.results || [];
        bookingList.replaceChildren.apply(bookingList, results.map(renderBooking));
        bookingsEmpty.hidden = results.length > 0;
      })
      .catch(function (error) { console.warn("inbox: bookings failed", error); })
      .then(function () { bookingList.setAttribute("aria-busy", "false"); });
  }

  function renderBooking(booking) {
    var li = el("li", "inbox-booking");
    var top = el("p", "inbox-booking-top");
    var link = el("a", "inbox-booking-tour", booking.tour ? booking.tour.name : "Tour");
    link.href = "/admin/travel/booking/" + encodeURIComponent(booking.id) + "/change/";
    top.appendChild(link);
    var status = String(booking.status || "");
    top.appendChild(el("span", "pill pill-" + status.toLowerCase(), status.charAt(0) + status.slice(1).toLowerCase()));
    li.appendChild(top);
    var when = booking.departure && booking.departure.startDate ? new Date(booking.departure.startDate + "T00:00:00") : null;
    var meta = "Booking #" + booking.id;
    if (when && !isNaN(when.getTime())) meta += " · departs " + when.toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
    meta += " · " + booking.travellers + (booking.travellers === 1 ? " traveller" : " travellers");
    li.appendChild(el("p", "inbox-booking-meta small muted", meta));
    return li;
  }

  // --- Replying --------------------------------------------------------------------------------

  function pendingNode(text) {
    var li = el("li", "inbox-msg from-staff is-mine is-pending");
    var head = el("p", "inbox-msg-head");
    head.appendChild(el("span", "inbox-msg-who", "You"));
    head.appendChild(el("span", "inbox-msg-time", "sending…"));
    li.appendChild(head);
    li.appendChild(el("p", "inbox-msg-text", text));
    return li;
  }

  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = !text;
  }

  function sendReply() {
    var text = textarea.value;
    if (!text.trim() || selectedId === null) return;
    var id = clientId();
    var roomId = selectedId;
    pending.set(id, { text: text, node: pendingNode(text) });
    textarea.value = "";
    showError("");
    renderLog(true);
    var rt = window.realtime;
    if (rt && rt.status === "open") {
      rt.send({ type: "send_message", roomId: roomId, message: text, clientId: id });
    } else {
      request("POST", MESSAGES_API, { roomId: roomId, message: text, clientId: id })
        .then(function (message) { if (roomId === selectedId) addMessages([message], true); })
        .catch(function (error) { failed(id, error.message); });
    }
  }

  function failed(id, detail) {
    var entry = pending.get(id);
    if (!entry) return;
    pending.delete(id);
    // Shown from the room but not acknowledged: it may not have been kept; not shown as sent.
    if (entry.stored) messages.delete(entry.stored);
    renderLog(false);
    if (!textarea.value) textarea.value = entry.text;
    showError("Your reply was not sent: " + (detail || "please try again") + ".");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    sendReply();
  });
  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendReply();
    }
  });
  olderBtn.addEventListener("click", loadOlder);
  backBtn.addEventListener("click", function () {
    root.classList.remove("has-selection");
    var li = items.get(selectedId);
    if (li) li.firstElementChild.focus();
  });

  // --- Live events -----------------------------------------------------------------------------

  function onSupportMessage(frame) {
    if (!frame.room || typeof frame.room.id !== "number") return;
    var room = upsertRoom(frame.room, frame.message);
    renderList();
    if (room.id === selectedId) {
      renderThreadHead(room);
      if (addMessages([frame.message])) markRead();
    }
  }

  function subscribe() {
    var rt = window.realtime;
    if (!rt) return;
    rt.on("support_message", onSupportMessage);
    rt.on("message", function (frame) {
      if (frame.message && frame.message.roomId === selectedId && addMessages([frame.message])) markRead();
    });
    rt.on("ack", function (frame) {
      if (frame.message && frame.message.roomId === selectedId) addMessages([frame.message], true);
    });
    rt.on("error", function (frame) {
      if (frame.ref && pending.has(frame.ref)) failed(frame.ref, frame.detail);
    });
    rt.on("open", function (info) {
      if (info && info.reconnected && selectedId !== null) {
        // Catch up on what was said while the socket was away.
        var last = Math.max.apply(null, [0].concat(Array.from(messages.keys())));
        rt.send({ type: "join_room", roomId: selectedId });
        rt.send({ type: "sync", roomId: selectedId, afterId: last });
      }
    });
    rt.on("history", function (frame) {
      if (frame.roomId === selectedId) addMessages(frame.messages);
    });
  }

  // --- Start -----------------------------------------------------------------------------------

  var initial = [];
  try {
    initial = JSON.parse(document.getElementById("inbox-rooms").textContent) || [];
  } catch (error) {
    console.warn("inbox: bad initial rooms", error);
  }
  initial.forEach(function (room) { upsertRoom(room, null); });
  renderList();
  subscribe();
  setInterval(function () {
    renderList();
    var room = rooms.get(selectedId);
    if (room) renderThreadHead(room);
  }, TICK_MS);

  var match = /^#room-(\d+)$/.exec(location.hash);
  if (match && rooms.has(Number(match[1]))) select(Number(match[1]), false);
})();
