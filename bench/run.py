"""Run every benchmark scenario against the baseline and the real server; print the table.

    .venv/bin/python bench/run.py            # full run, about 6-8 minutes
    .venv/bin/python bench/run.py --quick    # smoke run, about 1-2 minutes

Starts, on loopback only: the `websockets` baseline (bench/baseline_server.py) and daphne
(`travelsite.asgi:application`, a second one for the scale-out scenario) pinned to core 0, and
runs the load generator in this process pinned to core 1 (with PostgreSQL and Redis if
`--services-on-loadgen-core`; back on every core at the end). Uses only PostgreSQL database
`travelsite_bench` and Redis db 7 (flushed at the start: it holds nothing else). See
bench/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import functools
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DATABASE_URL = "postgres://postgres@127.0.0.1:5432/travelsite_bench"
REDIS_URL = "redis://127.0.0.1:6379/7"
SERVER_CORE = "0"
LOADGEN_CORE = 1


# --- Servers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cmd: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", SERVER_CORE, *cmd] if pin else cmd


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def server_env() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        # The limiters still run (their Redis round trips are part of the cost per message) but
        # never refuse: the saturated scenarios measure the transport, not the product limits.
        "RATE_LIMIT_MESSAGES": "1000000/1000000",
        "RATE_LIMIT_WS_FRAMES": "1000000/1000000",
        "PYTHONUNBUFFERED": "1",
    }


def wait_until(ready: Callable[[], bool], server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log.read_text(errors='replace')}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} did not start:\n{server.log.read_text(errors='replace')}")


def start_baseline(logs: Path, pin: bool, port: int = 0) -> Server:
    port = port or free_port()
    log = logs / f"baseline-{port}.log"
    cmd = [PY, str(ROOT / "bench" / "baseline_server.py"), "--port", str(port)]
    process = subprocess.Popen(
        pinned(cmd, pin), cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    server = Server("baseline", port, process, log)

    def ready() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    wait_until(ready, server)
    return server


def start_daphne(logs: Path, pin: bool, name: str, port: int = 0) -> Server:
    port = port or free_port()
    log = logs / f"{name}-{port}.log"
    cmd = [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "travelsite.asgi:application"]
    process = subprocess.Popen(
        pinned(cmd, pin),
        cwd=ROOT,
        env=server_env(),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(name, port, process, log)

    def ready() -> bool:
        url = f"http://127.0.0.1:{port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)

    wait_until(ready, server)
    return server


# --- Data ----------------------------------------------------------------------------------------


def setup_data(history: int) -> dict[str, Any]:
    out = subprocess.run(
        [PY, str(ROOT / "bench" / "setup_data.py"), "--history", str(history)],
        cwd=ROOT,
        env=server_env(),
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def flush_redis() -> None:
    import redis

    assert REDIS_URL.endswith("/7")
    redis.Redis.from_url(REDIS_URL).flushdb()


# --- PostgreSQL and Redis off the server's core -------------------------------------------------


def service_pids() -> list[int]:
    """PostgreSQL's postmaster and its children, and Redis' server: every process they run."""
    return [pid for pids in services_by_name().values() for pid in pids]


@functools.cache
def _service_roots() -> tuple[int, int]:
    """The postmaster's pid and Redis' (asked once: a fan-out asks at both ends of its window,
    and a connection made then would be a backend started and ended beside the measurement)."""
    import psycopg
    import redis

    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    postmaster = int((Path(row[0]) / "postmaster.pid").read_text().split()[0])
    info: dict[str, Any] = redis.Redis.from_url(REDIS_URL).info("server")  # type: ignore[assignment]
    return postmaster, int(info["process_id"])


def services_by_name() -> dict[str, list[int]]:
    """{"PostgreSQL": the postmaster and its children, "Redis": its server}."""
    postmaster, redis_pid = _service_roots()
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(loadgen.stat_fields(int(entry.name))[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    family, todo = [], [postmaster]
    while todo:
        pid = todo.pop()
        family.append(pid)
        todo.extend(children.get(pid, ()))
    return {"PostgreSQL": family, "Redis": [redis_pid]}


def _threads(pid: int) -> list[int]:
    try:
        return [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return []


class ServicesPinned:
    """PostgreSQL and Redis on the load generator's core for the run (`--services-on-loadgen-core`).

    Left anywhere, the kernel often wakes a backend on the core of the daphne that woke it, and
    part of the database's CPU comes out of the server's; pinned, it comes out of the load
    generator's. A 2-core machine has no third core to stand in for the database's own
    machine; interleaved, neither measured better than the noise (docs/performance.md,
    sixteenth session). New backends inherit the postmaster's mask; `restore()` puts every
    process of theirs back on every core. Needs the right to set their affinity (root);
    without it, says so and leaves them be."""

    def __init__(self, core: int) -> None:
        self.core = core
        self.pinned: set[int] = set()
        self.note = "PostgreSQL and Redis local, unpinned"

    def apply(self) -> None:
        try:
            for pid in service_pids():
                for tid in _threads(pid):
                    with contextlib.suppress(ProcessLookupError):  # a backend that just ended
                        os.sched_setaffinity(tid, {self.core})
                        self.pinned.add(tid)
        except (OSError, ValueError) as error:
            self.restore()
            print(f"  (PostgreSQL and Redis left unpinned: {error})", flush=True)
            return
        self.note = f"PostgreSQL and Redis pinned to core {self.core}"

    def restore(self) -> None:
        """Every task of theirs back on every core (a service's mask unless someone set it:
        so a run killed before it could restore is undone by the next one's)."""
        if not self.pinned:
            return
        try:
            now = [tid for pid in service_pids() for tid in _threads(pid)]
        except (OSError, ValueError):
            now = []
        every_core = set(range(os.cpu_count() or 1))
        for tid in {*self.pinned, *now}:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, every_core)
        self.pinned = set()


def db_execute(*statements: str) -> None:
    import psycopg

    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


# The fan-out rooms are every public `bench-*` room but the history one.
CLEAR_ROOMS = (
    "UPDATE chat_chatroom SET last_message_id = NULL WHERE kind = 'public'"
    " AND name LIKE 'bench-%' AND name <> 'bench-history'",
    "DELETE FROM chat_chatmessage WHERE room_id IN (SELECT id FROM chat_chatroom"
    " WHERE kind = 'public' AND name LIKE 'bench-%' AND name <> 'bench-history')",
)
RESET_READ = (
    "UPDATE chat_chatroomparticipant p SET last_read_message_id = COALESCE(r.last_message_id, 0)"
    " FROM chat_chatroom r WHERE p.room_id = r.id AND r.kind = 'public'"
    " AND r.name LIKE 'bench-%' AND r.name <> 'bench-history'"
)


def reset_fanout_rooms() -> None:
    """Start each run with empty fan-out rooms (earlier runs' messages would change costs)."""
    try:
        db_execute(*CLEAR_ROOMS)
    except Exception as error:  # a new foreign key elsewhere: keep the old messages
        print(f"  (could not clear the fan-out rooms: {error})")
    reset_read_markers()
    vacuum_chat_tables()


#: Deleted and inserted rows (earlier runs, the saturated scenarios) leave dead tuples and stale
#: statistics that slowed the history pages by a third (7 -> 10 ms p50, same code): vacuumed
#: after the reset and before the history scenario, so every run measures the same state.
VACUUM_CHAT = tuple(
    f"VACUUM ANALYZE {table}"
    for table in ("chat_chatmessage", "chat_chatroom", "chat_chatroomparticipant")
)


def vacuum_chat_tables() -> None:
    db_execute(*VACUUM_CHAT)


def reset_read_markers() -> None:
    """Every participant has read everything: unread counts start from zero in each scenario."""
    db_execute(RESET_READ)


# --- Table ---------------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    metric: str
    baseline: float | None
    ours: float | None
    ratio: float | None
    target: str
    ok: bool | None
    #: Which run of its scenario (`--repeat`) this row is from.
    run: int = 0


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(ours: float | None, base: float | None) -> float | None:
    if ours is None or base is None or base == 0:
        return None
    return ours / base


def median_runs(rows: Sequence[Row]) -> list[tuple[Row, list[Row]]]:
    """Each (scenario, metric) once, in first-seen order, from its scenario's median run, with
    all its runs.

    A scenario's median run is the one whose first judged row (a target, not "info") has the
    median ratio (else ours; the lower median of an even count), so that every row shown for
    a scenario comes from the same run.
    """
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.scenario, row.metric), []).append(row)

    def key(row: Row) -> float:
        value = row.ratio if row.ratio is not None else row.ours
        return float("inf") if value is None else value

    median_run: dict[str, int] = {}
    for (scenario, _), runs in groups.items():
        if scenario not in median_run and any(r.ok is not None for r in runs):
            median_run[scenario] = sorted(runs, key=key)[(len(runs) - 1) // 2].run
    merged = []
    for (scenario, _), runs in groups.items():
        chosen = [r for r in runs if r.run == median_run.get(scenario, runs[0].run)]
        merged.append((chosen[0] if chosen else runs[0], runs))
    return merged


def runs_column(runs: Sequence[Row]) -> str:
    """How many of a row's runs passed, and the range of its ratio (or of ours)."""
    values = [r.ratio if r.ratio is not None else r.ours for r in runs]
    known = [v for v in values if v is not None]
    suffix = "x" if runs[0].ratio is not None else ""
    spread = f"{fmt(min(known))}-{fmt(max(known))}{suffix}" if known else "-"
    judged = [r.ok for r in runs if r.ok is not None]
    return f"{sum(judged)}/{len(judged)} pass, {spread}" if judged else spread


def print_table(rows: Sequence[Row]) -> str:
    """The table; with repeated runs, each row is its median run plus a `runs` column."""
    merged = median_runs(rows)
    repeated = any(len(runs) > 1 for _, runs in merged)
    header = ["scenario", "metric", "baseline", "ours", "ratio", "target", "pass"]
    header += ["runs"] if repeated else []
    lines = [
        [
            r.scenario,
            r.metric,
            fmt(r.baseline),
            fmt(r.ours),
            "-" if r.ratio is None else f"{r.ratio:.2f}x",
            r.target,
            "-" if r.ok is None else ("PASS" if r.ok else "FAIL"),
        ]
        + ([runs_column(runs)] if repeated else [])
        for r, runs in merged
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
    text = "\n".join(out)
    print(text)
    return text


# --- Scenarios -----------------------------------------------------------------------------------


#: The fan-out 100 scenario's name (its rows, and its raw figures' key in `--json`).
FANOUT_100 = "fan-out 100 @20/s"


@dataclass
class Config:
    quick: bool
    fixed_s: float
    saturated_s: float
    idle_n: int
    big_n: int
    history_samples: int
    senders: int
    settle_max_s: float


class Bench:
    def __init__(
        self, cfg: Config, data: dict[str, Any], base: Server, ours: Server, logs: Path, pin: bool
    ) -> None:
        self.cfg = cfg
        self.data = data
        self.base = base
        self.ours = ours
        self.daphnes = [ours]
        self.logs = logs
        self.pin = pin
        self.rows: list[Row] = []
        self.raw: dict[str, Any] = {}
        self.restarts: list[str] = []
        #: Whether the servers have held no connection yet (what `idle` measures from).
        self.fresh = True
        #: How many times each scenario has run (`_both` alternates which server goes first).
        self.runs_of: Counter[str] = Counter()

    def record(self, name: str, figures: dict[str, Any]) -> None:
        """Keep a run's raw figures (`--json`): `name`, then `name #2`, ... when repeated."""
        key, n = name, 1
        while key in self.raw:
            n += 1
            key = f"{name} #{n}"
        self.raw[key] = figures

    def guarded(self, key: str, step: Callable[[], None], run: int = 0) -> None:
        """Run one scenario; a scenario the server cannot complete is a FAIL row, not the end."""
        first = len(self.rows)
        try:
            step()
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"[:90]
            print(f"    {key} did not complete: {reason}", flush=True)
            self.raw.setdefault("failed", {})[key] = reason
            self.rows.append(Row(key, f"did not complete ({reason})", None, None, None, "-", False))
            self.quiet_or_restart(f"after failed {key}", force=True)
        finally:
            for row in self.rows[first:]:
                row.run = run

    def restart_servers(self, *, baseline: bool) -> None:
        """The daphnes (and the baseline) as new processes on their ports, Redis db flushed."""
        for server in [self.base, *self.daphnes] if baseline else self.daphnes:
            server.stop()
        flush_redis()
        if baseline:
            fresh = start_baseline(self.logs, self.pin, port=self.base.port)
            self.base.process, self.base.log = fresh.process, fresh.log
        for server in self.daphnes:
            fresh = start_daphne(self.logs, self.pin, server.name, port=server.port)
            server.process, server.log = fresh.process, fresh.log

    def quiet_or_restart(self, before: str, force: bool = False) -> None:
        """A server still working off an earlier scenario's backlog is restarted (Redis db 7
        flushed), so every scenario starts from an idle process."""
        pids = [d.pid for d in self.daphnes]
        took = asyncio.run(loadgen.settle(pids, limit_s=self.cfg.settle_max_s))
        if took < self.cfg.settle_max_s and not force:
            return
        print(f"    (daphne still busy {took:.0f} s later: restarting it before {before})")
        self.restarts.append(before)
        self.restart_servers(baseline=False)

    def _specs(
        self, server: Server, token_list: Sequence[str | None], rooms: Sequence[int], per: int
    ) -> list[tuple[str, str | None, int, str]]:
        return [
            (server.ws_url, token_list[i], rooms[i // per], "all") for i in range(per * len(rooms))
        ]

    def _fanout(
        self,
        server: Server,
        real: bool,
        rooms: Sequence[int],
        per: int,
        rate: float | None,
        duration: float,
        extra_pids: Sequence[int] = (),
        sub_specs: list[tuple[str, str | None, int, str]] | None = None,
    ) -> dict[str, Any]:
        subs: list[str | None] = (
            list(self.data["subs"]) if real else [None] * len(self.data["subs"])
        )
        senders: list[str | None] = (
            list(self.data["senders"][: self.cfg.senders]) if real else [None] * self.cfg.senders
        )
        # Both servers share the server core: wait for (or restart) a daphne still busy with an
        # earlier backlog before measuring either of them.
        self.quiet_or_restart(f"{server.name} {len(sub_specs or []) or per * len(rooms)} subs")
        if real:
            reset_read_markers()
        specs = sub_specs or self._specs(server, subs, rooms, per)
        return asyncio.run(
            loadgen.fanout(
                sub_specs=specs,
                sender_specs=[(server.ws_url, t) for t in senders],
                rooms=rooms,
                rate=rate,
                duration=duration,
                server_pids=[server.pid, *extra_pids],
                services=services_by_name,
                tag=f"{server.name}-{len(specs)}",
            )
        )

    def _both(self, name: str, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The same load on the baseline and on ours; with `--repeat`, every second run of a
        scenario measures ours first, so that a machine drifting during the runs does not
        always favour the same server (baseline-ours, ours-baseline, ...)."""
        self.runs_of[name] += 1

        def baseline() -> dict[str, Any]:
            print(f"- {name}: baseline ...", flush=True)
            return self._fanout(self.base, False, **kwargs)

        def ours() -> dict[str, Any]:
            print(f"- {name}: travelsite ...", flush=True)
            return self._fanout(self.ours, True, **kwargs)

        if self.runs_of[name] % 2:
            b = baseline()
            o = ours()
        else:
            o = ours()
            b = baseline()
        self.record(name, {"baseline": b, "ours": o})
        for who, r in (("baseline", b), ("ours", o)):
            print(
                f"    {who}: sent {r['sent']} acked {r['acked']} delivered {r['deliveries']}"
                f"/{r['expected']} lost {r['lost']} errors {r['errors']} p50/p99"
                f" {fmt(r['latency_ms']['p50'])}/{fmt(r['latency_ms']['p99'])} ms,"
                f" {fmt(r['deliveries_per_s'])} deliveries/s, server"
                f" {fmt(r['server_cpu_us_per_delivery'])} us/delivery, loadgen CPU"
                f" {fmt(r['loadgen_cpu_pct'])}%",
                flush=True,
            )
        return b, o

    def latency_rows(self, name: str, b: dict[str, Any], o: dict[str, Any], limit: float) -> None:
        bp50, op50 = b["latency_ms"]["p50"], o["latency_ms"]["p50"]
        bp99, op99 = b["latency_ms"]["p99"], o["latency_ms"]["p99"]
        self.rows.append(Row(name, "p50 ms", bp50, op50, ratio(op50, bp50), "info", None))
        r99 = ratio(op99, bp99)
        ok = r99 is not None and r99 <= limit and o["lost"] == 0
        self.rows.append(Row(name, "p99 ms", bp99, op99, r99, f"<= {limit:g}x", ok))

    def keeps_up_row(self, name: str, b: dict[str, Any], o: dict[str, Any]) -> None:
        # Keeps up: nothing lost, less than 1 s of traffic queued when sending stops, and the
        # last quarter's median latency within 2x (+50 ms) of the first quarter's.
        def keeps(r: dict[str, Any]) -> bool:
            early, late = r["early_p50_ms"] or 0, r["late_p50_ms"] or 0
            return bool(
                r["lost"] == 0
                and (r["backlog_end_s"] or 0) < 1.0
                and late <= max(2 * early, early + 50)
            )

        self.rows.append(
            Row(
                name,
                "late p50 ms (drift)",
                b["late_p50_ms"],
                o["late_p50_ms"],
                ratio(o["late_p50_ms"], b["late_p50_ms"]),
                "keeps up",
                keeps(o),
            )
        )

    def throughput_rows(self, name: str, b: dict[str, Any], o: dict[str, Any]) -> None:
        bd, od = b["deliveries_per_s"], o["deliveries_per_s"]
        r = ratio(od, bd)
        ok = r is not None and r >= 0.25 and o["lost"] == 0 and not o["errors"]
        self.rows.append(Row(name, "deliveries/s", bd, od, r, ">= 0.25x, 0 lost", ok))
        self.rows.append(
            Row(name, "messages stored/s", b["acks_per_s"], o["acks_per_s"], None, "info", None)
        )
        bu, ou = b["server_cpu_us_per_delivery"], o["server_cpu_us_per_delivery"]
        self.rows.append(Row(name, "server CPU us/delivery", bu, ou, ratio(ou, bu), "info", None))
        self.rows.append(
            Row(
                name,
                "loadgen CPU % of a core",
                b["loadgen_cpu_pct"],
                o["loadgen_cpu_pct"],
                None,
                "info",
                None,
            )
        )
        for service in ("PostgreSQL", "Redis"):
            self.rows.append(
                Row(
                    name,
                    f"{service} CPU % of a core",
                    b.get("services_cpu_pct", {}).get(service),
                    o.get("services_cpu_pct", {}).get(service),
                    None,
                    "info",
                    None,
                )
            )
        self.rows.append(
            Row(name, "undelivered after drain", b["lost"], o["lost"], None, "0", o["lost"] == 0)
        )

    # The scenarios, in run order ------------------------------------------------------------

    def idle(self) -> None:
        n = self.cfg.idle_n
        name = f"idle {n} sockets"
        if not self.fresh:
            # A repeat: a process that held connections before keeps their memory for the next
            # ones, and its RSS would hardly grow; memory per connection needs new processes.
            self.restart_servers(baseline=True)
        self.fresh = False
        print(f"- {name}: baseline ...", flush=True)
        b = asyncio.run(
            loadgen.idle(url=self.base.ws_url, tokens=[None] * n, server_pid=self.base.pid)
        )
        print(f"    baseline: {b}", flush=True)
        print(f"- {name}: travelsite ...", flush=True)
        o = asyncio.run(
            loadgen.idle(
                url=self.ours.ws_url, tokens=self.data["idle"][:n], server_pid=self.ours.pid
            )
        )
        print(f"    travelsite: {o}", flush=True)
        self.record("idle", {"baseline": b, "ours": o})
        bk, ok_ = b["kib_per_connection"], o["kib_per_connection"]
        r = ratio(ok_, bk)
        good = r is not None and r <= 2.5 and o["signed_in"] == n
        self.rows.append(Row(name, "KiB RSS per connection", bk, ok_, r, "<= 2.5x", good))
        self.rows.append(
            Row(name, "connects/s", b["connects_per_s"], o["connects_per_s"], None, "info", None)
        )
        self.rows.append(
            Row(
                name,
                "server CPU ms per connect",
                b["server_cpu_ms_per_connect"],
                o["server_cpu_ms_per_connect"],
                None,
                "info",
                None,
            )
        )

    def fanout_100(self) -> None:
        room = self.data["rooms"]["bench-100"]
        b, o = self._both(FANOUT_100, rooms=[room], per=100, rate=20.0, duration=self.cfg.fixed_s)
        self.latency_rows(FANOUT_100, b, o, 2.0)

    def fanout_big(self) -> None:
        n = self.cfg.big_n
        name = f"fan-out {n} @20/s"
        room = self.data["rooms"]["bench-500"]
        b, o = self._both(name, rooms=[room], per=n, rate=20.0, duration=self.cfg.fixed_s)
        self.latency_rows(name, b, o, 3.0)
        self.keeps_up_row(name, b, o)
        self.cpu_split_rows(n, b, o)

    def cpu_split_rows(self, n: int, b: dict[str, Any], o: dict[str, Any]) -> None:
        """Server CPU per message split into a fixed part and a part per recipient, from the
        same rate with 100 and with `n` subscribers (CPU = fixed + recipients x per delivery).

        The fixed part is what a message costs whoever hears it: the frame read, the rate
        limit, the store, the publish; background work per second is folded in (at 20/s)."""
        if n <= 100:
            return
        split: dict[str, tuple[float, float]] = {}
        for who, big in (("baseline", b), ("ours", o)):
            small = [
                raw[who]["server_cpu_us_per_delivery"]
                for key, raw in self.raw.items()
                if key.split(" #")[0] == FANOUT_100
                and raw[who]["server_cpu_us_per_delivery"] is not None
            ]
            if not small or big["server_cpu_us_per_delivery"] is None:
                return  # fan-out 100 not run (`--only`), or a run delivered nothing
            per_message_100 = statistics.median(small) * 100
            per_message_n = big["server_cpu_us_per_delivery"] * n
            per_delivery = (per_message_n - per_message_100) / (n - 100)
            split[who] = (per_message_100 - 100 * per_delivery, per_delivery)
        name = f"fan-out 100 vs {n}"
        (bf, bd), (of, od) = split["baseline"], split["ours"]
        self.rows.append(
            Row(name, "server CPU us/message, fixed", bf, of, ratio(of, bf), "info", None)
        )
        self.rows.append(
            Row(name, "server CPU us/delivery, marginal", bd, od, ratio(od, bd), "info", None)
        )

    def saturated_100(self) -> None:
        room = self.data["rooms"]["bench-100"]
        name = "saturated 1x100"
        b, o = self._both(name, rooms=[room], per=100, rate=None, duration=self.cfg.saturated_s)
        self.throughput_rows(name, b, o)

    def saturated_10x10(self) -> None:
        rooms = [self.data["rooms"][f"bench-r{i}"] for i in range(10)]
        name = "saturated 10x10"
        b, o = self._both(name, rooms=rooms, per=10, rate=None, duration=self.cfg.saturated_s)
        self.throughput_rows(name, b, o)

    def steady_10x10(self) -> None:
        """10 rooms of 10 at a fixed rate below saturation: server CPU per message.

        Saturated throughput mixes CPU per message with how well the server's threads share one
        core, and moved by 10-30 % between runs of the same code; at a rate both servers
        sustain, CPU per message moved by about 7 %. Sends then rarely arrive together, so this
        is also the cost of a message stored alone.
        """
        rooms = [self.data["rooms"][f"bench-r{i}"] for i in range(10)]
        name = f"steady 10x10 @{STEADY_RATE}/s"
        b, o = self._both(
            name, rooms=rooms, per=10, rate=float(STEADY_RATE), duration=self.cfg.saturated_s
        )
        bu, ou = b["server_cpu_us_per_delivery"], o["server_cpu_us_per_delivery"]
        bm = bu * 10 if bu is not None else None
        om = ou * 10 if ou is not None else None
        self.rows.append(Row(name, "server CPU us/message", bm, om, ratio(om, bm), "info", None))
        for q in ("p50", "p99"):
            bq, oq = b["latency_ms"][q], o["latency_ms"][q]
            self.rows.append(Row(name, f"{q} ms", bq, oq, ratio(oq, bq), "info", None))

    def history(self) -> None:
        vacuum_chat_tables()
        self.quiet_or_restart("history")
        h = self.data["history"]
        name = f"history {h['count']:,} msgs"
        conn = http.client.HTTPConnection("127.0.0.1", self.ours.port, timeout=30)
        headers = {"Authorization": f"Token {self.data['historyToken']}"}

        def get_page(query: str) -> tuple[float, bool]:
            """(ms, whether the answer was a full page) of one history request."""
            started = time.perf_counter()
            conn.request(
                "GET", f"/api/chat/messages?roomId={h['room']}&limit=50{query}", headers=headers
            )
            response = conn.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            return elapsed, response.status == 200 and len(json.loads(body)["results"]) == 50

        def sample(queries: dict[str, str]) -> dict[str, dict[str, Any]]:
            """The pages' timings, taken in turns (a round asks for each page once, in a
            rotating order), so that the machine's drift during the run weighs on all alike."""
            times: dict[str, list[float]] = {label: [] for label in queries}
            bad = dict.fromkeys(queries, 0)
            labels = list(queries)
            for i in range(self.cfg.history_samples + 10):
                shift = i % len(labels)
                for label in labels[shift:] + labels[:shift]:
                    elapsed, good = get_page(queries[label])
                    bad[label] += not good
                    if i >= 10:  # the first ten rounds warm up
                        times[label].append(elapsed)
            return {
                label: {**loadgen.summarize(times[label]), "bad": bad[label]} for label in labels
            }

        print(f"- {name} ...", flush=True)
        sampled = sample(
            {
                "newest": "",
                "before100k": f"&before={h['before100k']}",
                "before900k": f"&before={h['before900k']}",
            }
        )
        newest, at100k, at900k = (sampled[k] for k in ("newest", "before100k", "before900k"))
        conn.close()
        self.record("history", sampled)
        print(f"    {sampled}", flush=True)
        for label, s in (("newest", newest), ("depth 100k", at100k), ("depth 900k", at900k)):
            ok = s["p99"] is not None and s["p99"] <= 10.0 and s["bad"] == 0
            self.rows.append(Row(name, f"{label} p99 ms", None, s["p99"], None, "<= 10 ms", ok))
        for label, s in (("depth 100k", at100k), ("depth 900k", at900k)):
            r = ratio(s["p50"], newest["p50"])
            self.rows.append(
                Row(
                    name,
                    f"{label} p50 ms vs newest",
                    newest["p50"],
                    s["p50"],
                    r,
                    "<= 1.2x" if label == "depth 900k" else "info",
                    (r is not None and r <= 1.2) if label == "depth 900k" else None,
                )
            )

    def scale_out(self, second: Server) -> None:
        room = self.data["rooms"]["bench-100"]
        subs = self.data["subs"][:100]
        specs = [
            (
                (self.ours if i % 2 == 0 else second).ws_url,
                subs[i],
                room,
                "same" if i % 2 == 0 else "cross",
            )
            for i in range(100)
        ]
        name = "scale-out 2 procs, 100 subs"
        print(f"- {name} @20/s ...", flush=True)
        fixed = self._fanout(
            self.ours,
            True,
            rooms=[room],
            per=100,
            rate=20.0,
            duration=self.cfg.fixed_s,
            extra_pids=[second.pid],
            sub_specs=specs,
        )
        print(f"- {name} saturated ...", flush=True)
        sat = self._fanout(
            self.ours,
            True,
            rooms=[room],
            per=100,
            rate=None,
            duration=self.cfg.saturated_s,
            extra_pids=[second.pid],
            sub_specs=specs,
        )
        self.record("scale-out", {"fixed": fixed, "saturated": sat})
        for label, res in (("fixed", fixed), ("saturated", sat)):
            print(
                f"    {label}: delivered {res['deliveries']}/{res['expected']} lost {res['lost']}"
                f" by label {json.dumps(res['latency_ms_by_label'])}"
                f" {fmt(res['deliveries_per_s'])} deliveries/s cpu {res['server_cpu_by_pid']}",
                flush=True,
            )
        single = self.raw.get(FANOUT_100, {}).get("ours", {}).get("latency_ms", {})
        cross = fixed["latency_ms_by_label"].get("cross", {}).get("p99")
        r = ratio(cross, single.get("p99"))
        self.rows.append(
            Row(
                name,
                "cross-process p99 ms vs 1 proc",
                single.get("p99"),
                cross,
                r,
                "<= 1.5x",
                r is not None and r <= 1.5 and fixed["lost"] == 0,
            )
        )
        one = self.raw.get("saturated 1x100", {}).get("ours", {}).get("deliveries_per_server_cpu_s")
        two = sat["deliveries_per_server_cpu_s"]
        r2 = ratio(two, one)
        self.rows.append(
            Row(
                name,
                "deliveries per server CPU-s vs 1 proc",
                one,
                two,
                r2,
                ">= 0.8x",
                r2 is not None and r2 >= 0.8 and sat["lost"] == 0,
            )
        )
        # The same comparison at the fixed 20 messages/s, where both sides do the same work:
        # saturated, the single process' figure swings with how its batches form (74k-155k
        # deliveries per CPU-s across runs of one code), and the ratio with it.
        singles = [
            raw["ours"]["deliveries_per_server_cpu_s"]
            for key, raw in self.raw.items()
            if key.split(" #")[0] == FANOUT_100
            and raw["ours"]["deliveries_per_server_cpu_s"] is not None
        ]
        one_fixed = statistics.median(singles) if singles else None
        two_fixed = fixed["deliveries_per_server_cpu_s"]
        self.rows.append(
            Row(
                name,
                "deliveries per server CPU-s @20/s vs 1 proc",
                one_fixed,
                two_fixed,
                ratio(two_fixed, one_fixed),
                "info",
                None,
            )
        )
        self.rows.append(
            Row(
                name,
                "deliveries/s (2 procs, saturated)",
                None,
                sat["deliveries_per_s"],
                None,
                "info",
                None,
            )
        )


#: Messages/s of the steady 10x10 scenario: about a third of what daphne sustains saturated.
STEADY_RATE = 300

SCENARIOS = [
    "idle",
    "fanout100",
    "fanout500",
    "saturated100",
    "saturated10x10",
    "steady10x10",
    "history",
    "scaleout",
]


def python_yardstick_ms() -> float:
    """How long this machine takes for a fixed piece of pure Python (best of three), in ms.

    The shared VMs' speed varies by two to three times between sittings; the history target is
    absolute (ms), so a run's figures are read against this.
    """
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


def cpu_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat's `cpu` line), or [] where there is none."""
    try:
        with open("/proc/stat") as f:
            return [int(value) for value in f.readline().split()[1:]]
    except (OSError, ValueError):
        return []


def stolen_percent(before: Sequence[int], after: Sequence[int]) -> float | None:
    """The share of CPU time the hypervisor gave to others between two `cpu_times()`."""
    if len(before) < 8 or len(after) < 8:
        return None
    deltas = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(deltas[:8])
    return 100.0 * deltas[7] / total if total > 0 else None


def machine_notes(pin: bool, services: str, yardstick_ms: float, stolen: float | None) -> str:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; {os.cpu_count()} cores ({cpu});"
        f" Python {platform.python_version()}; "
        + (
            f"servers on core {SERVER_CORE}, loadgen on core {LOADGEN_CORE}"
            if pin
            else "not pinned"
        )
        + f"; {services}"
        + f"; pure-Python yardstick {yardstick_ms:.0f} ms"
        + (f"; CPU stolen by the host {stolen:.1f} %" if stolen is not None else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (about 1-2 min)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--json", help="also write the raw figures to this file")
    parser.add_argument(
        "--history", type=int, default=1_000_000, help="messages in the history room"
    )
    parser.add_argument("--senders", type=int, default=16, help="sender sockets (one user each)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each scenario N times in a row (baseline then ours each time): the table shows"
        " each scenario's median run and how many runs passed",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument(
        "--services-on-loadgen-core",
        action="store_true",
        help="pin PostgreSQL and Redis to the load generator's core for the run (needs root)",
    )
    parser.add_argument(
        "--profile",
        help="py-spy record daphne in the fan-out 100, saturated and history runs, into this dir",
    )
    args = parser.parse_args()
    cfg = Config(
        quick=args.quick,
        fixed_s=4.0 if args.quick else 30.0,
        saturated_s=4.0 if args.quick else 10.0,
        idle_n=300 if args.quick else 2000,
        big_n=200 if args.quick else 500,
        history_samples=40 if args.quick else 300,
        senders=args.senders,
        settle_max_s=10.0 if args.quick else 20.0,
    )
    only = set((args.only or ",".join(SCENARIOS)).split(","))
    if unknown := only - set(SCENARIOS):
        parser.error(f"unknown scenarios: {sorted(unknown)}")

    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    if pin:
        os.sched_setaffinity(0, {LOADGEN_CORE})
    started = time.monotonic()
    yardstick = python_yardstick_ms()
    cpu_before = cpu_times()
    print("setting up data (migrate, users, tokens, rooms, history) ...", flush=True)
    data = setup_data(args.history)
    print(f"  history room: {data['history']}", flush=True)
    flush_redis()
    reset_fanout_rooms()

    logs = Path(tempfile.mkdtemp(prefix="travelsite-bench-"))
    servers: list[Server] = []
    services = ServicesPinned(LOADGEN_CORE)
    if pin and args.services_on_loadgen_core:
        services.apply()
    try:
        base = start_baseline(logs, pin)
        servers.append(base)
        ours = start_daphne(logs, pin, "daphne-a")
        servers.append(ours)
        print(f"baseline pid {base.pid}, daphne pid {ours.pid}; logs in {logs}", flush=True)
        bench = Bench(cfg, data, base, ours, logs, pin)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("idle", bench.idle),  # first: fresh processes
            (
                "fanout100",
                lambda: profiled("fanout100", bench.fanout_100, ours, args.profile, cfg),
            ),
            ("fanout500", bench.fanout_big),
            (
                "saturated100",
                lambda: profiled("saturated100", bench.saturated_100, ours, args.profile, cfg),
            ),
            (
                "saturated10x10",
                lambda: profiled("saturated10x10", bench.saturated_10x10, ours, args.profile, cfg),
            ),
            ("steady10x10", bench.steady_10x10),
            ("history", lambda: profiled("history", bench.history, ours, args.profile, cfg)),
        ]
        for key, step in steps:
            if key in only:
                for run in range(args.repeat):
                    bench.guarded(key, step, run)
        if "scaleout" in only:
            bench.quiet_or_restart("scale-out")
            second = start_daphne(logs, pin, "daphne-b")
            servers.append(second)
            bench.daphnes.append(second)
            for run in range(args.repeat):
                bench.guarded("scaleout", lambda: bench.scale_out(second), run)
    finally:
        for server in servers:
            server.stop()
        services.restore()

    machine = machine_notes(pin, services.note, yardstick, stolen_percent(cpu_before, cpu_times()))
    print()
    print(f"Machine: {machine}; run took {time.monotonic() - started:.0f} s")
    if bench.restarts:
        print(f"daphne was restarted (still busy with an earlier backlog) before: {bench.restarts}")
    print()
    table = print_table(bench.rows)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "table": table, "raw": bench.raw}, indent=2)
        )


def profiled(
    name: str, step: Callable[[], None], server: Server, out: str | None, cfg: Config
) -> None:
    """Run `step`, sampling `server` with py-spy meanwhile (when asked and installed)."""
    spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    if out and not Path(spy).exists():
        print(f"  (no profile of {name}: py-spy is not installed; .venv/bin/pip install py-spy)")
        out = None
    if not out:
        step()
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    duration = int(cfg.saturated_s * 2 + 15)
    recorders = [
        subprocess.Popen(
            [
                spy,
                "record",
                "-p",
                str(server.pid),
                "-d",
                str(duration),
                "-r",
                "250",
                *(["--idle", "--threads"] if os.environ.get("BENCH_PROFILE_WALL") else ["--gil"]),
                "--format",
                "raw",
                "-o",
                str(Path(out) / f"{name}.folded"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        step()
    finally:
        for rec in recorders:
            try:
                rec.wait(timeout=duration + 30)
            except subprocess.TimeoutExpired:
                rec.terminate()


if __name__ == "__main__":
    main()
