"""The load generator: asyncio + `websockets` clients driving either server alike.

It opens subscriber sockets (each joins one room), sender sockets (which do not join), sends
`send_message` frames at a fixed rate or saturated (a window of unacknowledged sends and a cap on
undelivered deliveries, so nothing overflows a channel-layer inbox), and measures:

- latency of every delivery: the time from writing the `send_message` frame to reading the
  `message` frame on a subscriber (both clocks are this process' `perf_counter`; the clientId
  names the send);
- deliveries/s, acks/s, lost deliveries (expected minus received after the drain), duplicates;
- backlog (sent x subscribers - delivered) sampled every 0.5 s, and the latency drift between
  the first and the last quarter of the run (a server that falls behind drifts);
- the servers' CPU time (utime+stime from /proc/<pid>/stat) and RSS, and this process' CPU.

bench/run.py drives it; it can also be used alone against a running server:

    .venv/bin/python bench/loadgen.py --url ws://127.0.0.1:8765/ --subscribers 100 --rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect

T = TypeVar("T")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
CLIENT_ID_KEY = '"clientId":"'
MESSAGE_PREFIX = '{"type":"message",'
ACK_PREFIX = '{"type":"ack",'


# --- Process figures (/proc) ---------------------------------------------------------------------


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (field 3, the state, first; `ppid` is [1])."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rfind(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def services_cpu(services: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    """{name: {pid: CPU seconds}} of the processes still there (a backend may have ended)."""
    out: dict[str, dict[int, float]] = {}
    for name, pids in services.items():
        out[name] = {}
        for pid in pids:
            with contextlib.suppress(OSError):
                out[name][pid] = cpu_seconds(pid)
    return out


def services_percent(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], seconds: float
) -> dict[str, float]:
    """{name: % of a core} used between `before` and `after` (a process born since counts
    from zero)."""
    if seconds <= 0:
        return {}
    return {
        name: round(
            100
            * sum(cpu - before.get(name, {}).get(pid, 0.0) for pid, cpu in by_pid.items())
            / seconds,
            1,
        )
        for name, by_pid in after.items()
    }


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def total_cpu(pids: Sequence[int]) -> float:
    return sum(cpu_seconds(p) for p in pids)


async def settle(
    pids: Sequence[int], *, quiet: float = 0.05, window: float = 0.5, limit_s: float = 15.0
) -> float:
    """Wait until the servers use under `quiet` of a core for `window` s; the time it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        before = total_cpu(pids)
        await asyncio.sleep(window)
        if (total_cpu(pids) - before) / window < quiet:
            break
    return time.perf_counter() - started


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# --- Sockets -------------------------------------------------------------------------------------


async def open_socket(url: str, token: str | None) -> ClientConnection:
    headers = {"Authorization": f"Token {token}"} if token else None
    return await connect(
        url,
        additional_headers=headers,
        compression=None,  # daphne does not negotiate permessage-deflate either
        ping_interval=None,
        open_timeout=30,
        close_timeout=2,
        max_size=2**22,
    )


async def bounded_gather(n: int, makers: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the coroutines `makers` make, at most `n` at a time, in order."""
    gate = asyncio.Semaphore(n)

    async def one(make: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await make()

    return list(await asyncio.gather(*(one(m) for m in makers)))


def client_id_of(text: str) -> str | None:
    start = text.find(CLIENT_ID_KEY)
    if start < 0:
        return None
    start += len(CLIENT_ID_KEY)
    return text[start : text.find('"', start)]


def frame_type(text: str) -> tuple[str, str | None]:
    """(type, clientId) of a frame: a cheap string scan for our two hot frames, else JSON."""
    if text.startswith(MESSAGE_PREFIX):
        return "message", client_id_of(text)
    if text.startswith(ACK_PREFIX):
        return "ack", client_id_of(text)
    try:
        frame = json.loads(text)
    except ValueError:
        return "?", None
    if not isinstance(frame, dict):
        return "?", None
    kind = str(frame.get("type"))
    if kind == "message":
        return kind, (frame.get("message") or {}).get("clientId")
    if kind in ("ack", "error"):
        return kind, frame.get("clientId") or frame.get("ref") or frame.get("code")
    return kind, None


# --- One load run --------------------------------------------------------------------------------


@dataclass
class Run:
    """The shared state of one run: what was sent when, and what arrived."""

    tag: str
    sent_at: dict[str, float] = field(default_factory=dict)
    expected_per: dict[str, int] = field(default_factory=dict)
    received: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, array[float]] = field(
        default_factory=lambda: defaultdict(lambda: array("d"))
    )
    send_offsets: dict[str, array[float]] = field(
        default_factory=lambda: defaultdict(lambda: array("d"))
    )
    acked: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    deliveries: int = 0
    expected: int = 0
    t0: float = 0.0
    last_delivery: float = 0.0
    last_ack: float = 0.0
    ack_waiters: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    record: bool = True
    connect_retries: int = 0


async def subscriber_reader(
    ws: ClientConnection, run: Run, label: str, joined: asyncio.Future[None]
) -> None:
    sent_at = run.sent_at
    received = run.received
    latencies = run.latencies[label]
    offsets = run.send_offsets[label]
    perf = time.perf_counter
    with contextlib.suppress(Exception):
        async for text in ws:
            assert isinstance(text, str)
            if text.startswith(MESSAGE_PREFIX):
                now = perf()
                cid = client_id_of(text)
            else:
                kind, cid = frame_type(text)
                if kind == "room_joined" and not joined.done():
                    joined.set_result(None)
                elif kind == "error" and not joined.done():
                    joined.set_exception(RuntimeError(f"join failed: {text[:200]}"))
                    return
                if kind != "message":
                    continue
                now = perf()
            if cid is None or cid not in sent_at:
                continue  # not ours (an earlier run's, or another client's)
            t = sent_at[cid]
            received[cid] += 1
            run.deliveries += 1
            run.last_delivery = now
            if run.record:
                latencies.append((now - t) * 1000.0)
                offsets.append(t - run.t0)
    if not joined.done():
        joined.set_exception(RuntimeError("socket closed before joining"))


async def sender_reader(ws: ClientConnection, run: Run) -> None:
    with contextlib.suppress(Exception):
        async for text in ws:
            assert isinstance(text, str)
            if text.startswith(ACK_PREFIX):
                kind, cid = "ack", client_id_of(text)
            elif text.startswith('{"type":"error"'):
                kind, cid = frame_type(text)
                frame = json.loads(text)
                run.errors[str(frame.get("code"))] += 1
                cid = frame.get("ref")
            else:
                continue
            if kind == "ack":
                run.acked += 1
                run.last_ack = time.perf_counter()
            waiter = run.ack_waiters.pop(cid or "", None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)


@dataclass
class Subscriber:
    ws: ClientConnection
    task: asyncio.Task[None]


async def open_subscribers(
    run: Run,
    specs: Sequence[tuple[str, str | None, int, str]],
    *,
    concurrency: int = 10,
) -> list[Subscriber]:
    """Open and join one socket per (url, token, room id, label); all joined on return."""

    async def one(url: str, token: str | None, room_id: int, label: str) -> Subscriber:
        # A handshake or join can fail while the server is busy (daphne drops a handshake the
        # app did not accept within 5 s; the app closes a socket when Redis refuses it):
        # counted, and retried a few times.
        for attempt in range(5):
            ws: ClientConnection | None = None
            try:
                ws = await open_socket(url, token)
                joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                # A late failure after a timed-out wait is expected: mark it retrieved.
                joined.add_done_callback(lambda f: f.cancelled() or f.exception())
                task = asyncio.create_task(subscriber_reader(ws, run, label, joined))
                await ws.send(json.dumps({"type": "join_room", "roomId": room_id}))
                await asyncio.wait_for(joined, 30)
                return Subscriber(ws, task)
            except Exception:
                run.connect_retries += 1
                if ws is not None:
                    with contextlib.suppress(Exception):
                        await ws.close()
                if attempt == 4:
                    raise
                await asyncio.sleep(1.0 + attempt)
        raise AssertionError("unreachable")

    makers = [lambda s=s: one(*s) for s in specs]
    return await bounded_gather(concurrency, makers)


async def close_all(sockets: Sequence[ClientConnection], concurrency: int = 200) -> None:
    async def close(ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 5)

    await bounded_gather(concurrency, [lambda w=w: close(w) for w in sockets])  # type: ignore[misc]


def summarize(values: Sequence[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else None,
    }


async def fanout(
    *,
    sub_specs: Sequence[tuple[str, str | None, int, str]],
    sender_specs: Sequence[tuple[str, str | None]],
    rooms: Sequence[int],
    rate: float | None,
    duration: float,
    server_pids: Sequence[int],
    window: int = 0,
    backlog_messages: int = 100,
    drain_timeout: float = 10.0,
    max_messages: int = 1_000_000,
    tag: str = "run",
    services: Callable[[], dict[str, list[int]]] | None = None,
) -> dict[str, Any]:
    """One fan-out run: `rate` messages/s (None: saturated) for `duration` s, then drain.

    Messages go round-robin over the senders and over `rooms`; each room's subscribers are the
    sub_specs naming it. Bounded by `duration`, `max_messages` and `drain_timeout`.
    `services`: {name: pids} of the processes the server talks to (PostgreSQL, Redis), whose
    CPU over the same window is reported as `services_cpu_pct`.
    """
    run = Run(tag=f"{tag}-{os.getpid()}-{int(time.time() * 1000) % 10_000_000}")
    room_size = Counter(spec[2] for spec in sub_specs)
    await settle(server_pids)  # the previous run's leftovers
    connect_started = time.perf_counter()
    subscribers = await open_subscribers(run, sub_specs)
    senders = [await open_socket(url, token) for url, token in sender_specs]
    sender_tasks = [asyncio.create_task(sender_reader(ws, run)) for ws in senders]
    connect_s = time.perf_counter() - connect_started
    settle_s = await settle(server_pids)

    window = window or len(senders)
    cap = backlog_messages * max(room_size.values())
    backlog: list[tuple[float, int]] = []
    sending = True

    async def sample() -> None:
        while sending:
            backlog.append((time.perf_counter() - run.t0, run.expected - run.deliveries))
            await asyncio.sleep(0.5)

    gc.collect()
    gc.freeze()  # no full collections of the setup's objects inside the measured window
    cpu0 = {pid: cpu_seconds(pid) for pid in server_pids}
    services0 = services_cpu(services() if services else {})
    lg0 = time.process_time()
    run.t0 = time.perf_counter()
    sampler = asyncio.create_task(sample())
    deadline = run.t0 + duration
    k = 0
    late = 0
    in_flight = asyncio.Semaphore(window)
    perf = time.perf_counter
    loop = asyncio.get_running_loop()
    while k < max_messages:
        now = perf()
        if now >= deadline:
            break
        if rate is not None:
            due = run.t0 + k / rate
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > 0.05:
                late += 1
        else:
            await in_flight.acquire()
            # Polling (bounded by the deadline) is cheaper than an event set per delivery.
            while run.expected - run.deliveries > cap and perf() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
        room_id = rooms[k % len(rooms)]
        ws = senders[k % len(senders)]
        cid = f"{run.tag}-{k}"
        waiter: asyncio.Future[None] = loop.create_future()
        if rate is None:
            waiter.add_done_callback(lambda _f: in_flight.release())
        run.ack_waiters[cid] = waiter
        run.expected_per[cid] = room_size[room_id]
        run.expected += room_size[room_id]
        frame = json.dumps(
            {"type": "send_message", "roomId": room_id, "message": f"bench {k}", "clientId": cid}
        )
        run.sent_at[cid] = perf()
        try:
            await ws.send(frame)
        except Exception:
            run.errors["send_failed"] += 1
            break
        k += 1
    send_s = perf() - run.t0

    # Drain: until everything arrived, or nothing arrived for 2 s, or drain_timeout.
    drain_started = perf()
    last_seen = (run.deliveries, perf())
    while run.deliveries < run.expected and perf() - drain_started < drain_timeout:
        await asyncio.sleep(0.05)
        if run.deliveries != last_seen[0]:
            last_seen = (run.deliveries, perf())
        elif perf() - last_seen[1] > 2.0:
            break
    # Acks may trail the deliveries a little.
    while run.ack_waiters and perf() - drain_started < drain_timeout:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    sending = False
    await sampler
    total_s = max(run.last_delivery, run.last_ack, run.t0 + send_s) - run.t0
    server_cpu = {pid: cpu_seconds(pid) - cpu0[pid] for pid in server_pids}
    loadgen_cpu = time.process_time() - lg0
    services1 = services_cpu(services() if services else {})
    services_pct = services_percent(services0, services1, total_s)

    await close_all([s.ws for s in subscribers] + senders)
    for task in [*(s.task for s in subscribers), *sender_tasks]:
        task.cancel()

    lost = sum(max(0, run.expected_per[c] - run.received.get(c, 0)) for c in run.sent_at)
    dupes = sum(max(0, n - run.expected_per[c]) for c, n in run.received.items())
    all_latencies: list[float] = []
    per_label: dict[str, dict[str, float | None]] = {}
    early: list[float] = []
    worst: dict[float, float] = {}
    late_q: list[float] = []
    for label, values in run.latencies.items():
        per_label[label] = summarize(values)
        all_latencies.extend(values)
        for latency, offset in zip(values, run.send_offsets[label], strict=True):
            worst[offset] = max(worst.get(offset, 0.0), latency)  # a message: its send time
            if offset < send_s / 4:
                early.append(latency)
            elif offset >= send_s * 3 / 4:
                late_q.append(latency)
    slowest = sorted(worst.items(), key=lambda item: -item[1])[:8]
    delivery_rate = run.deliveries / total_s if total_s > 0 else 0.0
    offered = (rate or 0) * sum(room_size.values()) / max(len(room_size), 1)
    end_backlog = max((b for t, b in backlog if t >= send_s - 1.0), default=0)
    server_cpu_total = sum(server_cpu.values())
    return {
        "mode": "fixed" if rate else "saturated",
        "rate": rate,
        "subscribers": len(sub_specs),
        "rooms": len(room_size),
        "senders": len(senders),
        "sent": k,
        "late_sends": late,
        "acked": run.acked,
        "errors": dict(run.errors),
        "deliveries": run.deliveries,
        "expected": run.expected,
        "lost": lost,
        "duplicates": dupes,
        "connect_s": round(connect_s, 2),
        "connect_retries": run.connect_retries,
        "settle_s": round(settle_s, 2),
        "send_s": round(send_s, 2),
        "total_s": round(total_s, 2),
        "deliveries_per_s": round(delivery_rate, 1),
        "acks_per_s": round(run.acked / total_s, 1) if total_s > 0 else 0.0,
        "latency_ms": summarize(all_latencies),
        "latency_ms_by_label": per_label,
        "slowest_messages": [(round(o, 3), round(ms, 1)) for o, ms in slowest],
        "early_p50_ms": percentile(early, 50),
        "late_p50_ms": percentile(late_q, 50),
        "backlog_max": max((b for _, b in backlog), default=0),
        "backlog_end_s": round(end_backlog / offered, 2) if offered else None,
        "server_cpu_s": round(server_cpu_total, 3),
        "server_cpu_by_pid": {str(p): round(v, 3) for p, v in server_cpu.items()},
        "server_cpu_us_per_delivery": (
            round(server_cpu_total / run.deliveries * 1e6, 1) if run.deliveries else None
        ),
        "deliveries_per_server_cpu_s": (
            round(run.deliveries / server_cpu_total, 1) if server_cpu_total > 0 else None
        ),
        "services_cpu_pct": services_pct,
        "loadgen_cpu_s": round(loadgen_cpu, 3),
        "loadgen_cpu_pct": round(100 * loadgen_cpu / total_s, 1) if total_s > 0 else None,
        "loadgen_cpu_us_per_delivery": (
            round(loadgen_cpu / run.deliveries * 1e6, 1) if run.deliveries else None
        ),
    }


async def idle(
    *, url: str, tokens: Sequence[str | None], server_pid: int, concurrency: int = 50
) -> dict[str, Any]:
    """Open len(tokens) signed-in sockets and hold them: memory per connection, connect rate."""
    warm = await bounded_gather(10, [lambda t=t: open_socket(url, t) for t in tokens[:20]])  # type: ignore[misc]
    await close_all(warm)
    await settle([server_pid], limit_s=10)
    rss0 = rss_kib(server_pid)
    cpu0 = cpu_seconds(server_pid)
    started = time.perf_counter()
    failed = 0

    async def one(token: str | None) -> ClientConnection | None:
        nonlocal failed
        try:
            return await open_socket(url, token)
        except Exception:
            failed += 1
            return None

    opened = await bounded_gather(concurrency, [lambda t=t: one(t) for t in tokens])  # type: ignore[misc]
    sockets = [ws for ws in opened if ws is not None]
    connect_s = time.perf_counter() - started

    # Every socket answers a ping: signed in and handled, not just accepted.
    async def ping(ws: ClientConnection) -> bool:
        await ws.send('{"type":"ping"}')
        while True:
            text = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(text, str) and '"pong"' in text:
                return True

    pongs = await bounded_gather(
        200,
        [lambda w=w: ping(w) for w in sockets],  # type: ignore[misc]
    )
    ready_s = time.perf_counter() - started
    connect_cpu = cpu_seconds(server_pid) - cpu0
    await settle([server_pid], limit_s=15)
    rss1 = rss_kib(server_pid)
    await close_all(sockets)
    await settle([server_pid], limit_s=15)
    n = len(sockets)
    return {
        "connections": n,
        "failed": failed,
        "signed_in": sum(pongs),
        "connect_s": round(connect_s, 2),
        "ready_s": round(ready_s, 2),
        "connects_per_s": round(n / connect_s, 1) if connect_s else None,
        "server_cpu_ms_per_connect": round(connect_cpu / n * 1000, 2) if n else None,
        "rss_before_kib": rss0,
        "rss_after_kib": rss1,
        "kib_per_connection": round((rss1 - rss0) / n, 2) if n else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="ws://127.0.0.1:8765/")
    parser.add_argument("--pid", type=int, action="append", default=[], help="server pid(s)")
    parser.add_argument("--tokens", help="setup_data.py JSON (for the real server)")
    parser.add_argument("--room", type=int, default=1)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--rate", type=float, default=20.0, help="messages/s; 0: saturated")
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    if not args.url.startswith(("ws://127.0.0.1", "ws://localhost")):
        parser.error("the benchmark stays on loopback")
    subs: list[str | None] = [None] * args.subscribers
    senders: list[str | None] = [None] * args.senders
    if args.tokens:
        with open(args.tokens) as f:
            data = json.load(f)
        subs, senders = data["subs"][: args.subscribers], data["senders"][: args.senders]
    result = asyncio.run(
        fanout(
            sub_specs=[(args.url, t, args.room, "all") for t in subs],
            sender_specs=[(args.url, t) for t in senders],
            rooms=[args.room],
            rate=args.rate or None,
            duration=min(args.duration, 60.0),
            server_pids=args.pid,
        )
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
