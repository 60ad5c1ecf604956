/*
 * presence.js — presence dots, a small reusable component.
 *
 *   presence.dot(userId, name, {size: "sm" | "md" | "lg"})  a <span> dot that stays up to date
 *   presence.set(userId, {isOnline, lastSeenAt, name?})     record a state (re-renders its dots)
 *   presence.get(userId)                                    the known state, or undefined
 *   presence.label(userId, name)                            "Alice Smith — online" / "— last seen 2m ago"
 *   presence.on(fn)                                         fn(userId, state) on every change
 *
 * States come from `presence {userId, isOnline, lastSeenAt}` events, from `room_joined`'s presence
 * list and, for a user not heard of yet, from GET /api/users/presence/{id} (once). Labels ("2m ago")
 * are refreshed every 30 s. Dots are found again by `data-presence-user`, so detached ones need no
 * bookkeeping.
 */
(function () {
  "use strict";

  if (window.presence) return;

  var REFRESH_MS = 30000;
  var states = new Map(); // userId -> {isOnline, lastSeenAt, name}
  var fetching = new Set();
  var listeners = new Set();

  function fullName(user) {
    if (!user) return "";
    return ((user.firstName || "") + " " + (user.lastName || "")).trim();
  }

  function ago(iso) {
    var then = Date.parse(iso);
    if (isNaN(then)) return "";
    var seconds = Math.max(0, Math.round((Date.now() - then) / 1000));
    if (seconds < 60) return "just now";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + "m ago";
    var hours = Math.floor(minutes / 60);
    if (hours < 24) return hours + "h ago";
    var days = Math.floor(hours / 24);
    if (days < 30) return days + "d ago";
    return "on " + new Date(then).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
  }

  function stateText(state) {
    if (!state) return "offline";
    if (state.isOnline) return "online";
    if (state.lastSeenAt) return "last seen " + ago(state.lastSeenAt);
    return "offline";
  }

  function label(userId, name) {
    var state = states.get(Number(userId));
    var who = name || (state && state.name) || "User";
    return who + " — " + stateText(state);
  }

  function render(el) {
    var userId = Number(el.dataset.presenceUser);
    var state = states.get(userId);
    var text = label(userId, el.dataset.presenceName);
    el.classList.toggle("is-online", Boolean(state && state.isOnline));
    el.classList.toggle("is-unknown", !state);
    el.title = text;
    el.setAttribute("aria-label", text);
  }

  function dotsOf(userId) {
    return document.querySelectorAll('[data-presence-user="' + Number(userId) + '"]');
  }

  function set(userId, patch) {
    userId = Number(userId);
    if (!userId) return;
    var previous = states.get(userId) || {};
    var next = {
      isOnline: Boolean(patch.isOnline),
      lastSeenAt: patch.lastSeenAt === undefined ? previous.lastSeenAt || null : patch.lastSeenAt,
      name: patch.name || previous.name || "",
    };
    states.set(userId, next);
    dotsOf(userId).forEach(render);
    listeners.forEach(function (fn) {
      try { fn(userId, next); } catch (error) { console.error("presence: a listener failed", error); }
    });
  }

  function fetchState(userId) {
    if (states.has(userId) || fetching.has(userId)) return;
    fetching.add(userId);
    fetch("/api/users/presence/" + userId, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data && !states.has(userId)) {
          set(userId, { isOnline: data.isOnline, lastSeenAt: data.lastSeenAt, name: fullName(data.user) });
        }
      })
      .catch(function () { /* offline: the live events will tell */ })
      .finally(function () { fetching.delete(userId); });
  }

  function dot(userId, name, options) {
    var size = (options && options.size) || "md";
    var el = document.createElement("span");
    el.className = "presence-dot presence-" + size;
    el.setAttribute("role", "img");
    el.dataset.presenceUser = String(Number(userId));
    if (name) el.dataset.presenceName = name;
    render(el);
    if (!states.has(Number(userId))) fetchState(Number(userId));
    return el;
  }

  function fromPresenceList(list) {
    (list || []).forEach(function (p) {
      set(p.userId, { isOnline: p.isOnline, lastSeenAt: p.lastSeenAt, name: fullName(p.user) });
    });
  }

  window.presence = {
    dot: dot,
    set: set,
    get: function (userId) { return states.get(Number(userId)); },
    label: label,
    fullName: fullName,
    ago: ago,
    fromPresenceList: fromPresenceList,
    on: function (fn) { listeners.add(fn); return function () { listeners.delete(fn); }; },
  };

  if (window.realtime) {
    window.realtime.on("presence", function (frame) {
      set(frame.userId, { isOnline: frame.isOnline, lastSeenAt: frame.lastSeenAt });
    });
    window.realtime.on("room_joined", function (frame) { fromPresenceList(frame.presence); });
  }

  // "last seen 2m ago" ages: re-render every dot now and then.
  setInterval(function () {
    document.querySelectorAll("[data-presence-user]").forEach(render);
  }, REFRESH_MS);
})();
