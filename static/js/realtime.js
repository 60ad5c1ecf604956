/*
 * realtime.js — the one WebSocket of this tab, shared by every widget on the page.
 *
 *   realtime.on("message", (frame) => ...)   subscribe to a server event type; returns an unsubscribe
 *   realtime.on("open" | "close" | "status", fn)   pseudo-events (re-`sync` rooms on "open")
 *   realtime.send({type: "join_room", roomId: 1})  sent now, or queued until the socket is open
 *   realtime.status        "connecting" | "open" | "reconnecting" | "closed"
 *   realtime.whenLive(load)  run `load` once the socket is open (what is sent after it arrives
 *                            live, so nothing falls between); if opening is slow, now and again then
 *
 * The session cookie signs the socket in. It reconnects with exponential backoff and jitter,
 * pings every 25 s, and gives up on close code 4401 (not signed in). `document.body.dataset.realtime`
 * mirrors the status so browser tests can wait for "open".
 */
(function () {
  "use strict";

  if (window.realtime) return; // one socket per tab, even if the script is included twice

  var PING_INTERVAL_MS = 25000;
  var PONG_TIMEOUT_MS = 10000; // no frame at all this long after a ping: the link is dead
  var BACKOFF_START_MS = 500;
  var BACKOFF_CAP_MS = 30000;
  var STABLE_AFTER_MS = 10000; // an open socket this old resets the backoff
  var QUEUE_LIMIT = 200;
  var CLOSE_UNAUTHENTICATED = 4401;
  var LIVE_WAIT_MS = 1500; // whenLive: how long a first load waits for the socket to open

  var body = document.body;
  var path = (body && body.dataset.wsUrl) || "/ws/";
  var url = (location.protocol === "https:" ? "wss" : "ws") + "://" + location.host + path;

  var listeners = new Map();
  var queue = [];
  var socket = null;
  var attempt = 0;
  var reconnectTimer = null;
  var pingTimer = null;
  var pongTimer = null;
  var stableTimer = null;
  var stopped = false;
  var unloading = false;
  var banner = null;
  var held = false;

  var realtime = {
    status: "connecting",
    url: url,
    on: on,
    off: off,
    send: send,
    whenLive: whenLive,
    reconnect: reconnectNow,
    // Test hooks: drop the socket as a network failure would; {hold: true} keeps it down until
    // _debugResume() (browser tests of gap recovery).
    _debugDrop: debugDrop,
    _debugResume: debugResume,
  };
  window.realtime = realtime;

  function on(type, fn) {
    if (!listeners.has(type)) listeners.set(type, new Set());
    listeners.get(type).add(fn);
    return function () { off(type, fn); };
  }

  /**
   * Run `load` (a page's first fetch of counts and lists) once the socket is open: the server
   * subscribes a socket before its handshake ends, so anything that changes after the fetch
   * arrives as an event. If the socket is slow to open, load now and once more when it opens.
   */
  function whenLive(load) {
    if (realtime.status === "open") {
      load();
      return;
    }
    var early = setTimeout(load, LIVE_WAIT_MS);
    var stop = on("open", function () {
      stop();
      clearTimeout(early);
      load();
    });
  }

  function off(type, fn) {
    var set = listeners.get(type);
    if (set) set.delete(fn);
  }

  function emit(type, payload) {
    var targets = [];
    [type, "*"].forEach(function (key) {
      var set = listeners.get(key);
      if (set) set.forEach(function (fn) { targets.push(fn); });
    });
    targets.forEach(function (fn) {
      try {
        fn(payload);
      } catch (error) {
        console.error("realtime: a " + type + " listener failed", error);
      }
    });
  }

  function send(obj) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(obj));
      return true;
    }
    if (queue.length >= QUEUE_LIMIT) queue.shift();
    queue.push(obj);
    return false;
  }

  function setStatus(status) {
    if (realtime.status === status && body.dataset.realtime === status) return;
    realtime.status = status;
    body.dataset.realtime = status;
    showBanner(status === "reconnecting");
    emit("status", { status: status });
  }

  function showBanner(visible) {
    if (!banner) {
      if (!visible) return;
      banner = document.createElement("div");
      banner.className = "realtime-banner";
      banner.setAttribute("role", "status");
      banner.id = "realtime-banner";
      banner.textContent = "Reconnecting…";
      body.appendChild(banner);
    }
    banner.hidden = !visible;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (stopped) return;
    if (held) {
      reconnectTimer = setTimeout(connect, 200);
      return;
    }
    var ws;
    try {
      ws = new WebSocket(url);
    } catch (error) {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.onopen = function () {
      if (socket !== ws) return;
      setStatus("open");
      stableTimer = setTimeout(function () { attempt = 0; }, STABLE_AFTER_MS);
      pingTimer = setInterval(ping, PING_INTERVAL_MS);
      emit("open", { reconnected: attempt > 0 });
      var pending = queue.splice(0, queue.length);
      pending.forEach(function (obj) { send(obj); });
    };
    ws.onmessage = function (event) {
      if (socket !== ws) return;
      clearTimeout(pongTimer);
      pongTimer = null;
      if (typeof event.data !== "string") return;
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        console.warn("realtime: ignoring a frame that is not JSON");
        return;
      }
      if (frame && typeof frame.type === "string") emit(frame.type, frame);
    };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      closed(event.code, event.reason);
    };
    // An error is always followed by close; nothing to do here.
    ws.onerror = function () {};
  }

  function ping() {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    send({ type: "ping" });
    if (!pongTimer) pongTimer = setTimeout(dropDeadSocket, PONG_TIMEOUT_MS);
  }

  function dropDeadSocket() {
    // The network may hold a dead connection for minutes before "close" fires: give up on it now.
    var ws = socket;
    if (!ws) return;
    socket = null;
    try { ws.close(4000, "ping timeout"); } catch (error) { /* already closing */ }
    closed(1006, "ping timeout");
  }

  function closed(code, reason) {
    socket = null;
    clearInterval(pingTimer);
    clearTimeout(pongTimer);
    clearTimeout(stableTimer);
    pingTimer = pongTimer = stableTimer = null;
    emit("close", { code: code, reason: reason });
    if (unloading) return;
    if (code === CLOSE_UNAUTHENTICATED) {
      stopped = true;
      setStatus("closed");
      return;
    }
    scheduleReconnect();
  }

  function scheduleReconnect() {
    if (stopped || reconnectTimer) return;
    setStatus("reconnecting");
    var ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * Math.pow(2, attempt));
    // "Equal jitter": at least half the ceiling, so retries never bunch up at zero.
    var delay = ceiling / 2 + Math.random() * (ceiling / 2);
    attempt += 1;
    reconnectTimer = setTimeout(connect, delay);
  }

  function debugDrop(options) {
    held = Boolean(options && options.hold);
    var ws = socket;
    if (!ws) return;
    socket = null;
    try { ws.close(4000, "debug drop"); } catch (error) { /* already closing */ }
    closed(1006, "debug drop");
  }

  function debugResume() {
    held = false;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    connect();
  }

  function reconnectNow() {
    if (stopped || (socket && socket.readyState <= WebSocket.OPEN)) return;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    connect();
  }

  // Back online or back to a hidden tab: don't wait out a long backoff.
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reconnectNow();
  });
  window.addEventListener("pagehide", function () { unloading = true; });
  window.addEventListener("pageshow", function (event) {
    unloading = false;
    if (event.persisted) reconnectNow(); // restored from the back/forward cache
  });

  setStatus("connecting");
  connect();
})();
