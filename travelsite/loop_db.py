"""PostgreSQL transactions run by the event loop itself, for the hottest write (chat.store).

Channels runs Django's database work on one thread, one call after another. Each round trip
of a call there costs two trades of the GIL with the event loop, and the thread waits for the
loop to let go of the GIL before it can read PostgreSQL's answer: under load a store of eight
messages took 6.5 ms there, against 2.9 ms alone (docs/performance.md). On the loop, a
transaction awaits its answers like any other socket does.

The connections are psycopg's `AsyncConnection`, made from Django's own settings for the
database (the same adapters, so rows load as Django's connection loads them; time zone UTC,
as Django sets it; prepared statements as configured). Each event loop keeps its own idle
connections: a connection belongs to the loop it was made on.
"""

import asyncio
import weakref
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import django.db
import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from travelsite.sql import Rows, Statement

Result = TypeVar("Result")

#: The sequence `durable()` sets (a write: see `_flush`), made by chat's migration 0003.
FLUSH_SEQUENCE = "chat_commit_flush_seq"

#: Idle connections kept per event loop (chat.store runs one transaction at a time).
MAX_IDLE = 2


def available() -> bool:
    """Whether the database is PostgreSQL (the only one this module connects to)."""
    return bool(connections[DEFAULT_DB_ALIAS].vendor == "postgresql")


def connection_params(*, synchronous_commit: bool | None = None) -> dict[str, Any]:
    """`psycopg.AsyncConnection.connect` arguments, from Django's for the default database;
    `synchronous_commit`: whether commits wait for the disk (None: the server's setting)."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    params = wrapper.get_connection_params()
    params.pop("cursor_factory", None)
    server_side = wrapper.settings_dict["OPTIONS"].get("server_side_binding") is True
    params["cursor_factory"] = psycopg.AsyncCursor if server_side else psycopg.AsyncClientCursor
    params["autocommit"] = True  # transactions are explicit (`conn.transaction()`)
    params.setdefault("connect_timeout", 10)  # seconds; a database that does not answer fails
    options = [params["options"]] if params.get("options") else []
    if settings.USE_TZ:  # Django's timestamptz loader expects the session in its time zone
        options.append(f"-c TimeZone={wrapper.timezone_name}")
    if synchronous_commit is not None:
        options.append(f"-c synchronous_commit={'on' if synchronous_commit else 'off'}")
    if options:
        params["options"] = " ".join(options)
    return params


@dataclass
class _LoopState:
    """One event loop's connections, and how far its commits are known to be on disk."""

    idle: list[psycopg.AsyncConnection[Any]] = field(default_factory=list)
    #: Transactions committed without waiting for the disk, and how many of them are on it.
    committed: int = 0
    on_disk: int = 0
    #: The connection `durable()` commits on, and its commit under way.
    flusher: psycopg.AsyncConnection[Any] | None = None
    flushing: "asyncio.Task[None] | None" = None


class LoopConnections:
    """Transactions on the running loop's own idle connections (made when none is idle);
    `wait_for_disk=False`: their commits do not wait for the disk (`durable()` does)."""

    def __init__(self, max_idle: int = MAX_IDLE, *, wait_for_disk: bool = True) -> None:
        self._max_idle = max_idle
        self._wait_for_disk = wait_for_disk
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    def _state(self) -> _LoopState:
        return self._loops.setdefault(asyncio.get_running_loop(), _LoopState())

    async def run_steps(
        self, make_steps: Callable[[], Generator[Statement, Rows, Result]]
    ) -> Result:
        """Run the statements of `make_steps()` in one transaction; what the steps return.

        psycopg's errors are raised as Django's (`django.db.IntegrityError`, `OperationalError`,
        ...), as Django's own connection raises them, so callers handle one kind.
        """
        try:
            return await self._run_steps(make_steps)
        except psycopg.Error as error:
            raise _as_django_error(error) from error

    async def _run_steps(
        self, make_steps: Callable[[], Generator[Statement, Rows, Result]]
    ) -> Result:
        """An idle connection may have died meanwhile (PostgreSQL restarted): if it fails on the
        transaction's first round trip, nothing was committed, and the steps run again on a new
        connection."""
        state = self._state()
        idle = state.idle
        while True:
            reused = bool(idle)
            conn = (
                idle.pop()
                if reused
                else await psycopg.AsyncConnection.connect(
                    **connection_params(synchronous_commit=None if self._wait_for_disk else False)
                )
            )
            transaction = _Transaction(conn)
            try:
                result = await transaction.run(make_steps())
            except psycopg.OperationalError:
                await conn.close()
                if reused and transaction.round_trips <= 1 and not transaction.committing:
                    for stale in idle:  # they idled as long: start afresh
                        await stale.close()
                    idle.clear()
                    await self._close_flusher(state)
                    continue
                raise
            except BaseException:
                await transaction.roll_back()
                await self._put_back(idle, conn)
                raise
            if not self._wait_for_disk:
                state.committed += 1
            await self._put_back(idle, conn)
            return result

    async def durable(self) -> None:
        """Return once every transaction committed on this loop before the call is on disk.

        Raises Django's `OperationalError` if PostgreSQL could not be asked (it restarted, say):
        what was committed may then have been lost, or not; a caller that confirms a write only
        after this tells its author to try again.
        """
        state = self._state()
        wanted = state.committed
        while state.on_disk < wanted:
            if state.flushing is None or state.flushing.done():
                state.flushing = asyncio.get_running_loop().create_task(self._flush(state))
                state.flushing.add_done_callback(_retrieve_exception)
            try:
                await asyncio.shield(state.flushing)  # a waiter that goes leaves it to the rest
            except psycopg.Error as error:
                raise _as_django_error(error) from error

    async def _flush(self, state: _LoopState) -> None:
        covers = state.committed
        conn = state.flusher
        if conn is None or conn.closed:
            conn = state.flusher = await psycopg.AsyncConnection.connect(
                **connection_params(synchronous_commit=True)
            )
        try:
            # A write (setting a sequence writes to the log) committed synchronously waits until
            # the log up to it is on disk, and so the earlier commits with it. A transaction that
            # wrote nothing would not wait (chat's migration 0003 has the sequence).
            await conn.execute(f"SELECT setval('{FLUSH_SEQUENCE}', 1)")
        except psycopg.Error:
            # Not retried on a new connection: if PostgreSQL restarted, what was committed
            # before may be gone, and a new connection would not say so.
            await self._close_flusher(state)
            raise
        state.on_disk = max(state.on_disk, covers)

    async def _close_flusher(self, state: _LoopState) -> None:
        if state.flusher is not None:
            conn, state.flusher = state.flusher, None
            await conn.close()

    async def close_idle(self) -> None:
        """Close the running loop's idle connections (before the loop ends, e.g. in tests)."""
        state = self._loops.pop(asyncio.get_running_loop(), None)
        if state is None:
            return
        for conn in state.idle:
            await conn.close()
        await self._close_flusher(state)

    async def _put_back(
        self, idle: list[psycopg.AsyncConnection[Any]], conn: psycopg.AsyncConnection[Any]
    ) -> None:
        healthy = (
            not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )
        if healthy and len(idle) < self._max_idle:
            idle.append(conn)
        else:
            await conn.close()


def _retrieve_exception(task: "asyncio.Task[None]") -> None:
    """A flush whose waiters all went: its failure is not worth a warning of its own."""
    if not task.cancelled():
        task.exception()


def _as_django_error(error: psycopg.Error) -> Exception:
    """The `django.db` exception Django's connection raises for this psycopg one."""
    for name in (
        "DataError",
        "OperationalError",
        "IntegrityError",
        "InternalError",
        "ProgrammingError",
        "NotSupportedError",
        "InterfaceError",
    ):
        if isinstance(error, getattr(psycopg, name)):
            return getattr(django.db, name)(*error.args)
    return django.db.DatabaseError(*error.args)


class _Transaction:
    """One transaction of steps in as few round trips as the steps allow.

    `BEGIN` goes with the first statement, and `COMMIT` with the last ones that return nothing
    (`Statement.returns_rows`): a store of messages (lock, insert, room update) is three round
    trips, not five. Those go as one query of several statements (the simple protocol, values
    bound by psycopg on this side); a lone statement that returns rows goes alone, prepared as
    configured. A statement that returns nothing fails at the latest with the COMMIT, which
    then does not run, so the transaction still commits all or nothing.
    """

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self.round_trips = 0
        #: Whether the round trip carrying the COMMIT was sent (it may have committed).
        self.committing = False

    async def run(self, steps: Generator[Statement, Rows, Result]) -> Result:
        together: list[Statement] = [_BEGIN]
        try:
            statement = next(steps)
            while True:
                if not statement.returns_rows:
                    together.append(statement)
                    statement = steps.send(None)
                    continue
                if together:
                    rows = await self._execute_together([*together, statement])
                    together = []
                else:
                    rows = await self._execute(statement)
                statement = steps.send(rows)
        except StopIteration as done:
            self.committing = True
            await self._execute_together([*together, _COMMIT])
            return done.value

    async def _execute(self, statement: Statement) -> Rows:
        self.round_trips += 1
        async with self.conn.cursor() as cursor:
            await cursor.execute(statement.sql, statement.params)
            return await cursor.fetchall() if cursor.description is not None else None

    async def _execute_together(self, statements: list[Statement]) -> Rows:
        """Run `statements` in one round trip; the last one's rows."""
        self.round_trips += 1
        async with psycopg.AsyncClientCursor(self.conn) as cursor:
            query = "; ".join(
                cursor.mogrify(s.sql, s.params) if s.params else s.sql for s in statements
            )
            await cursor.execute(query)
            while cursor.nextset():
                pass
            return await cursor.fetchall() if cursor.description is not None else None

    async def roll_back(self) -> None:
        """End a transaction a step failed in (a connection that cannot is closed later)."""
        if self.conn.closed or self.conn.info.transaction_status == _IDLE:
            return
        try:
            await self.conn.execute("ROLLBACK")
        except psycopg.Error:
            await self.conn.close()


_BEGIN = Statement("BEGIN", [], returns_rows=False)
_COMMIT = Statement("COMMIT", [], returns_rows=False)
_IDLE = psycopg.pq.TransactionStatus.IDLE
