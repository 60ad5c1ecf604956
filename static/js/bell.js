/*
 * bell.js — the notifications bell: unread badge, the panel listing notifications, toasts.
 *
 * Data: GET /api/notifications (pages by `before`), PATCH/DELETE for one notification, and the
 * socket (window.realtime): `notification {notification, unreadCount}` adds one and raises the
 * badge, `notifications_unread {unreadCount}` follows reads/deletes made in any tab.
 * "Mark all read" sends `mark_notifications_read {all: true}`, so every tab's badge follows.
 *
 * Server data is rendered with textContent/createElement only.
 */
(function () {
  "use strict";

  var root = document.getElementById("notifications");
  if (!root || window.bell) return;

  var API = "/api/notifications";
  var PAGE = 20;
  var TOAST_MS = 6000;
  var TOAST_LIMIT = 3;
  var SVG_NS = "http://www.w3.org/2000/svg";

  var TYPES = {
    BOOKING: { label: "Booking", icon: "M7 2h2v2h6V2h2v2h2a2 2 0 0 1 2 2v13a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2h2zM5 10v9h14v-9zm2 2h4v4H7z" },
    TOUR: { label: "Tour", icon: "M2.5 20 9 8.5l3.6 6.2L15 11l6.5 9zM16.5 3a2.5 2.5 0 1 1 0 5 2.5 2.5 0 0 1 0-5z" },
    PAYMENT: { label: "Payment", icon: "M2 7a2 2 0 0 1 2-2h16a2 2 0 0 1 2 2v1H2zm0 4h20v6a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2zm3 3v2h6v-2z" },
    SYSTEM: { label: "System", icon: "M12 2a10 10 0 1 1 0 20 10 10 0 0 1 0-20zm-1 5v2h2V7zm0 4v6h2v-6z" },
    PROMOTION: { label: "Offer", icon: "M12 2.5l2.9 6 6.6.8-4.9 4.5 1.3 6.6L12 17.1l-5.9 3.3 1.3-6.6-4.9-4.5 6.6-.8z" },
    MESSAGE: { label: "Message", icon: "M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H10l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 5v2h10V8zm0 4v2h7v-2z" },
  };
  var ICON_CHECK = "M9.5 16.2 5.3 12l-1.4 1.4 5.6 5.6L20.1 8.4 18.7 7z";
  var ICON_CLOSE = "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6l5.6-5.6L5 6.4z";

  var button = document.getElementById("notifications-button");
  var badge = document.getElementById("notifications-badge");
  var panel = document.getElementById("notifications-panel");
  var list = document.getElementById("notifications-list");
  var empty = document.getElementById("notifications-empty");
  var more = document.getElementById("notifications-more");
  var markAll = document.getElementById("notifications-mark-all");
  var filter = document.getElementById("notifications-filter");
  var countText = document.getElementById("notifications-count");

  var state = {
    items: [], // newest first
    hasMore: false,
    unread: 0,
    countVersion: 0, // bumped by every live count, so a slower page load cannot overwrite it
    loadToken: 0,
    stale: false,
    loading: false,
  };

  var toasts = document.createElement("div");
  toasts.className = "toast-region";
  toasts.id = "notifications-toasts";
  toasts.setAttribute("aria-live", "polite");
  toasts.setAttribute("aria-label", "New notifications");
  document.body.appendChild(toasts);

  // --- HTTP ------------------------------------------------------------------------------

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function request(method, url, body, keepalive) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      keepalive: !!keepalive,
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (method !== "GET") init.headers["X-CSRFToken"] = cookie("csrftoken");
    return fetch(url, init).then(function (response) {
      if (!response.ok) throw new Error(method + " " + url + " → " + response.status);
      return response.json();
    });
  }

  // --- Rendering helpers ---------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function icon(path, size) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", size || 18);
    svg.setAttribute("height", size || 18);
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var p = document.createElementNS(SVG_NS, "path");
    p.setAttribute("d", path);
    p.setAttribute("fill", "currentColor");
    p.setAttribute("fill-rule", "evenodd");
    svg.appendChild(p);
    return svg;
  }

  function typeInfo(type) {
    return TYPES[type] || TYPES.SYSTEM;
  }

  function typeBadge(type) {
    var wrap = el("span", "bell-icon bell-icon-" + String(type || "SYSTEM").toLowerCase());
    wrap.appendChild(icon(typeInfo(type).icon, 18));
    return wrap;
  }

  function relativeTime(iso) {
    var then = new Date(iso).getTime();
    if (isNaN(then)) return "";
    var seconds = Math.round((Date.now() - then) / 1000);
    if (seconds < 45) return "just now";
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return minutes + " min ago";
    var hours = Math.round(minutes / 60);
    if (hours < 24) return hours + " h ago";
    var days = Math.round(hours / 24);
    if (days < 7) return days + (days === 1 ? " day ago" : " days ago");
    return new Date(iso).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
  }

  function timeNode(iso) {
    var node = el("time", "bell-time", relativeTime(iso));
    node.dateTime = iso;
    var date = new Date(iso);
    if (!isNaN(date.getTime())) node.title = date.toLocaleString();
    return node;
  }

  /** Only links within this site or to http(s) pages; anything else (javascript:, data:) is dropped. */
  function safeLink(link) {
    if (typeof link !== "string" || !link) return null;
    if (/^\/(?!\/)/.test(link)) return link;
    try {
      var url = new URL(link, location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (error) {
      return null;
    }
  }

  // --- Badge ----------------------------------------------------------------------------------

  function setUnread(count) {
    state.unread = Math.max(0, count | 0);
    var text = state.unread > 99 ? "99+" : String(state.unread);
    badge.textContent = state.unread > 0 ? text : "";
    badge.hidden = state.unread === 0;
    button.dataset.unread = String(state.unread);
    button.title = state.unread ? state.unread + " unread notifications" : "Notifications";
    countText.textContent = state.unread ? state.unread + " unread" : "";
    markAll.disabled = state.unread === 0;
  }

  function liveCount(count) {
    state.countVersion += 1;
    var changed = (count | 0) !== state.unread;
    setUnread(count);
    if (!changed) return;
    if (state.unread === 0) {
      state.items.forEach(function (item) { item.isRead = true; });
      renderList();
    } else {
      // Another tab read or deleted some: refresh what this one shows.
      state.stale = true;
      if (!panel.hidden) load(false);
    }
  }

  // --- The list -------------------------------------------------------------------------------

  function renderItem(item) {
    var li = el("li", "bell-item" + (item.isRead ? "" : " is-unread"));
    li.dataset.id = String(item.id);
    li.appendChild(typeBadge(item.type));

    var body = el("div", "bell-item-body");
    var meta = el("p", "bell-item-meta");
    if (!item.isRead) meta.appendChild(el("span", "bell-dot", "")).setAttribute("aria-hidden", "true");
    meta.appendChild(el("span", "bell-type", typeInfo(item.type).label));
    meta.appendChild(el("span", "bell-sep", "·")).setAttribute("aria-hidden", "true");
    meta.appendChild(timeNode(item.createdAt));
    if (!item.isRead) meta.appendChild(el("span", "visually-hidden", ", unread"));
    body.appendChild(meta);

    var titleId = "notification-title-" + item.id;
    var href = safeLink(item.link);
    var title = el("p", "bell-item-title");
    title.id = titleId;
    if (href) {
      var a = el("a", "bell-item-link", item.title);
      a.href = href;
      a.addEventListener("click", function () {
        if (!item.isRead) markRead(item, true);
      });
      title.appendChild(a);
    } else {
      title.textContent = item.title;
    }
    body.appendChild(title);
    if (item.message) body.appendChild(el("p", "bell-item-message", item.message));
    li.appendChild(body);

    var actions = el("div", "bell-item-actions");
    if (!item.isRead) {
      var read = el("button", "bell-action");
      read.type = "button";
      read.setAttribute("aria-label", "Mark read");
      read.setAttribute("aria-describedby", titleId);
      read.title = "Mark read";
      read.appendChild(icon(ICON_CHECK, 18));
      read.addEventListener("click", function () { markRead(item, false); });
      actions.appendChild(read);
    }
    var del = el("button", "bell-action bell-action-delete");
    del.type = "button";
    del.setAttribute("aria-label", "Delete");
    del.setAttribute("aria-describedby", titleId);
    del.title = "Delete";
    del.appendChild(icon(ICON_CLOSE, 18));
    del.addEventListener("click", function () { remove(item, li); });
    actions.appendChild(del);
    li.appendChild(actions);
    return li;
  }

  function renderList() {
    var focusedId = null;
    var active = document.activeElement;
    if (active && list.contains(active)) {
      var owner = active.closest(".bell-item");
      focusedId = owner ? owner.dataset.id : null;
    }
    var nodes = state.items.map(renderItem);
    list.replaceChildren.apply(list, nodes);
    empty.hidden = state.items.length > 0 || state.loading;
    empty.textContent = filter.value ? "Nothing of this type yet." : "You're all caught up.";
    more.hidden = !state.hasMore;
    list.setAttribute("aria-busy", state.loading ? "true" : "false");
    if (focusedId) {
      var again = list.querySelector('.bell-item[data-id="' + focusedId + '"] button');
      if (again) again.focus();
    }
  }

  function merge(items, append) {
    var byId = new Map();
    (append ? state.items.concat(items) : items).forEach(function (item) { byId.set(item.id, item); });
    state.items = Array.from(byId.values()).sort(function (a, b) { return b.id - a.id; });
  }

  function query(before) {
    var params = new URLSearchParams({ limit: String(PAGE) });
    if (filter.value) params.set("type", filter.value);
    if (before) params.set("before", String(before));
    return API + "?" + params.toString();
  }

  function load(append) {
    var token = ++state.loadToken;
    var version = state.countVersion;
    var before = append && state.items.length ? state.items[state.items.length - 1].id : null;
    state.loading = true;
    if (!append) state.stale = false;
    list.setAttribute("aria-busy", "true");
    more.disabled = true;
    return request("GET", query(before))
      .then(function (page) {
        if (token !== state.loadToken) return;
        if (version === state.countVersion) setUnread(page.unreadCount);
        merge(page.results || [], append);
        state.hasMore = !!page.hasMore;
      })
      .catch(function (error) {
        console.warn("bell: could not load notifications", error);
      })
      .then(function () {
        if (token !== state.loadToken) return;
        state.loading = false;
        more.disabled = false;
        renderList();
      });
  }

  function markRead(item, navigating) {
    item.isRead = true;
    setUnread(state.unread - 1); // the answers then match: no reload of the list
    if (!navigating) renderList();
    request("PATCH", API, { ids: [item.id] }, navigating)
      .then(function (answer) { liveCount(answer.unreadCount); })
      .catch(function (error) { console.warn("bell: mark read failed", error); });
  }

  function remove(item, li) {
    var next = li.nextElementSibling || li.previousElementSibling;
    var nextId = next ? next.dataset.id : null;
    request("DELETE", API, { ids: [item.id] })
      .then(function (answer) {
        state.items = state.items.filter(function (other) { return other.id !== item.id; });
        setUnread(answer.unreadCount);
        state.countVersion += 1;
        renderList();
        var target = nextId && list.querySelector('.bell-item[data-id="' + nextId + '"] button');
        if (target) target.focus();
        else filter.focus();
      })
      .catch(function (error) { console.warn("bell: delete failed", error); });
  }

  function markAllRead() {
    state.items.forEach(function (item) { item.isRead = true; });
    setUnread(0);
    state.countVersion += 1;
    renderList();
    // Over the socket, the answer (`notifications_unread`) reaches every tab of this user.
    if (window.realtime && window.realtime.status === "open") {
      window.realtime.send({ type: "mark_notifications_read", all: true });
    } else {
      request("PATCH", API, { all: true })
        .then(function (answer) { liveCount(answer.unreadCount); })
        .catch(function (error) { console.warn("bell: mark all read failed", error); });
    }
    filter.focus();
  }

  // --- The panel ------------------------------------------------------------------------------

  function placePanel() {
    panel.style.top = "";
    if (window.matchMedia("(max-width: 720px)").matches) {
      var rect = button.getBoundingClientRect();
      panel.style.top = Math.round(rect.bottom + 8) + "px";
    }
  }

  function openPanel() {
    panel.hidden = false;
    button.setAttribute("aria-expanded", "true");
    root.classList.add("is-open");
    placePanel();
    if (state.stale) load(false);
    refreshTimes();
    var first = markAll.disabled ? filter : markAll;
    first.focus();
  }

  function closePanel(returnFocus) {
    if (panel.hidden) return;
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
    root.classList.remove("is-open");
    if (returnFocus) button.focus();
  }

  function refreshTimes() {
    document.querySelectorAll("#notifications time.bell-time, .toast-region time.bell-time").forEach(function (node) {
      node.textContent = relativeTime(node.dateTime);
    });
  }

  button.addEventListener("click", function () {
    if (panel.hidden) openPanel();
    else closePanel(false);
  });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.stopPropagation();
      closePanel(true);
    }
  });
  button.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closePanel(true);
  });
  document.addEventListener("click", function (event) {
    // The path as dispatched: a button re-rendered away by its own click still counts as inside.
    if (!panel.hidden && event.composedPath().indexOf(root) === -1) closePanel(false);
  });
  window.addEventListener("resize", function () { if (!panel.hidden) placePanel(); });
  markAll.addEventListener("click", markAllRead);
  more.addEventListener("click", function () { load(true); });
  filter.addEventListener("change", function () {
    state.items = [];
    state.hasMore = false;
    renderList();
    load(false);
  });
  setInterval(refreshTimes, 60000);

  // --- Toasts ---------------------------------------------------------------------------------

  function toast(item) {
    var node = el("div", "toast");
    node.setAttribute("role", "status");
    node.appendChild(typeBadge(item.type));
    var body = el("div", "toast-body");
    var titleId = "toast-title-" + item.id + "-" + Date.now();
    var title = el("p", "toast-title", item.title);
    title.id = titleId;
    body.appendChild(title);
    if (item.message) body.appendChild(el("p", "toast-message", item.message));
    var href = safeLink(item.link);
    if (href) {
      var a = el("a", "toast-link", "View");
      a.href = href;
      a.setAttribute("aria-describedby", titleId);
      a.addEventListener("click", function () { if (!item.isRead) markRead(item, true); });
      body.appendChild(a);
    }
    node.appendChild(body);
    var close = el("button", "toast-close");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.setAttribute("aria-describedby", titleId);
    close.appendChild(icon(ICON_CLOSE, 16));
    node.appendChild(close);

    var timer = null;
    function dismiss() {
      clearTimeout(timer);
      node.classList.add("is-leaving");
      setTimeout(function () { node.remove(); }, 200);
    }
    function arm() {
      clearTimeout(timer);
      timer = setTimeout(dismiss, TOAST_MS);
    }
    close.addEventListener("click", dismiss);
    // Hovered or focused toasts stay until left, so they can be read and used.
    node.addEventListener("mouseenter", function () { clearTimeout(timer); });
    node.addEventListener("mouseleave", arm);
    node.addEventListener("focusin", function () { clearTimeout(timer); });
    node.addEventListener("focusout", function (event) { if (!node.contains(event.relatedTarget)) arm(); });

    while (toasts.children.length >= TOAST_LIMIT) toasts.firstElementChild.remove();
    toasts.appendChild(node);
    arm();
  }

  // --- Live events -----------------------------------------------------------------------------

  function onNotification(frame) {
    var item = frame.notification;
    if (!item || typeof item.id !== "number") return;
    if (!filter.value || filter.value === item.type) {
      merge([item], true);
      renderList();
    }
    state.countVersion += 1;
    setUnread(frame.unreadCount);
    toast(item);
  }

  function subscribe() {
    var rt = window.realtime;
    if (!rt) return;
    rt.on("notification", onNotification);
    rt.on("notifications_unread", function (frame) { liveCount(frame.unreadCount); });
    // After a reconnect, events may have been missed: reload the count and the list.
    rt.on("open", function (info) { if (info && info.reconnected) load(false); });
  }

  window.bell = { reload: function () { return load(false); }, toast: toast };
  subscribe();
  if (window.realtime) window.realtime.whenLive(function () { load(false); });
  else load(false);
})();
