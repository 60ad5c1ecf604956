"""PostgreSQL transactions run by the event loop itself, for the hottest write (chat.store).

Channels runs Django's database work on one thread, one call after another. Each round trip
of a call there costs two trades of the GIL with the event loop, and the thread waits for the
loop to let go of the GIL before it can read PostgreSQL's answer: under load a store of eight
messages took 6.5 ms there, against 2.9 ms alone (docs/performance.md). On the loop, a
transaction awaits its answers like any other socket does.

The connections are psycopg's `AsyncConnection`, made from Django's own settings for the
database (the same adapters, so rows load as Django's connection loads them; time zone UTC,
as Django sets it). Their queries go straight through libpq, in the simple protocol
(`_Wire`), so they prepare nothing, whatever `DB_PREPARED_STATEMENTS` says. Each event loop
keeps its own idle connections: a connection belongs to the loop it was made on.
"""

import asyncio
import contextlib
import functools
import weakref
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import django.db
import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg import generators
from psycopg.adapt import PyFormat, Transformer

from travelsite.sql import Rows, Statement, StepsWentOn

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
    params["autocommit"] = True  # transactions are explicit (`BEGIN`, sent by `_Transaction`)
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

    idle: list["_Wire"] = field(default_factory=list)
    #: Transactions committed without waiting for the disk, and how many of them are on it.
    committed: int = 0
    on_disk: int = 0
    #: The connection `durable()` commits on, and its commit under way.
    flusher: "_Wire | None" = None
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
            wire = (
                idle.pop()
                if reused
                else await _connected(synchronous_commit=None if self._wait_for_disk else False)
            )
            transaction = _Transaction(wire)
            try:
                result = await transaction.run(make_steps())
            except psycopg.OperationalError:
                await wire.conn.close()
                if reused and transaction.round_trips <= 1 and not transaction.committing:
                    for stale in idle:  # they idled as long: start afresh
                        await stale.conn.close()
                    idle.clear()
                    await self._close_flusher(state)
                    continue
                raise
            except BaseException:
                await transaction.roll_back()
                await self._put_back(idle, wire)
                raise
            if not self._wait_for_disk:
                state.committed += 1
            await self._put_back(idle, wire)
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
        wire = state.flusher
        if wire is None or wire.conn.closed:
            wire = state.flusher = await _connected(synchronous_commit=True)
        try:
            # A write (setting a sequence writes to the log) committed synchronously waits until
            # the log up to it is on disk, and so the earlier commits with it. A transaction that
            # wrote nothing would not wait (chat's migration 0003 has the sequence).
            await wire.query(_FLUSH)
        except psycopg.Error:
            # Not retried on a new connection: if PostgreSQL restarted, what was committed
            # before may be gone, and a new connection would not say so.
            await self._close_flusher(state)
            raise
        state.on_disk = max(state.on_disk, covers)

    async def _close_flusher(self, state: _LoopState) -> None:
        if state.flusher is not None:
            wire, state.flusher = state.flusher, None
            await wire.conn.close()

    async def close_idle(self) -> None:
        """Close the running loop's idle connections (before the loop ends, e.g. in tests)."""
        state = self._loops.pop(asyncio.get_running_loop(), None)
        if state is None:
            return
        for wire in state.idle:
            await wire.conn.close()
        await self._close_flusher(state)

    async def _put_back(self, idle: list["_Wire"], wire: "_Wire") -> None:
        conn = wire.conn
        healthy = (
            not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )
        if healthy and len(idle) < self._max_idle:
            idle.append(wire)
        else:
            await conn.close()


async def _connected(*, synchronous_commit: bool | None) -> "_Wire":
    """A new connection to the default database (`connection_params`)."""
    conn = await psycopg.AsyncConnection.connect(
        **connection_params(synchronous_commit=synchronous_commit)
    )
    # psycopg's own rule: a server-binding cursor prepares from the connection's threshold
    # (`prepare_threshold` of Django's OPTIONS), a client-binding one never.
    server_side = conn.cursor_factory is psycopg.AsyncCursor
    return _Wire(conn, prepare_after=conn.prepare_threshold if server_side else None)


#: The flusher's write (see `LoopConnections._flush`).
_FLUSH = f"SELECT setval('{FLUSH_SEQUENCE}', 1)".encode()


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


class _Wire:
    """One connection's queries, sent straight through libpq (psycopg's `pgconn`).

    A psycopg cursor costs, per round trip, more Python than the round trip itself: the
    cursor's set-up, its result handling, and a wait that registers the socket with the loop
    and a timer, and unregisters both, every time. Here values are bound and rows loaded by
    psycopg's own adapters, as its cursors do, and the socket is watched for reading once per
    transaction (`watching`), not once per round trip (docs/performance.md, fifteenth session).

    - `query`: one simple-protocol string of one or several statements, the values bound as
      literals (as `ClientCursor.mogrify` binds them);
    - `run_alone`: one statement, its values bound by the server, and prepared once it has run
      `prepare_after` times on this connection (None: never), as Django's own connection
      prepares with `server_side_binding` (settings.py, `DB_PREPARED_STATEMENTS`).
    """

    def __init__(self, conn: psycopg.AsyncConnection[Any], prepare_after: int | None) -> None:
        self.conn = conn
        self._prepare_after = prepare_after
        #: (SQL, parameter types) -> how often run, and the name of those prepared.
        self._runs: dict[tuple[bytes, tuple[int, ...]], int] = {}
        self._prepared: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self._pgconn = conn.pgconn
        self._adapt = Transformer(conn)
        self._fileno = conn.pgconn.socket
        self._loop = asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._ready = 0
        self._watched = False

    def bound(self, statement: Statement) -> bytes:
        """`statement` as SQL text, its `%s` replaced by its values as literals."""
        pieces = _pieces(statement.sql)
        if len(pieces) != len(statement.params) + 1:
            raise psycopg.ProgrammingError(
                f"{len(pieces) - 1} placeholders for {len(statement.params)} values"
            )
        literal = self._adapt.as_literal
        out = [pieces[0]]
        for value, piece in zip(statement.params, pieces[1:], strict=True):
            out.append(literal(value))
            out.append(piece)
        return b"".join(out)

    async def query(self, sql: bytes, *, rows_of: int = -1) -> Rows:
        """Run `sql` (one statement or several); the rows of its statement at index `rows_of`
        (the last by default; None if it has none).

        The first statement that fails raises its error, as psycopg's; those after it did not
        run.
        """
        self._pgconn.send_query(sql)
        return self._rows(await self._wait(generators.execute(self._pgconn)), rows_of)

    async def run_alone(self, statement: Statement) -> Rows:
        """Run one statement, bound by the server (prepared once run often enough); its rows."""
        pgconn, adapt = self._pgconn, self._adapt
        sql = _numbered(statement.sql)
        params = adapt.dump_sequence(statement.params, [_AUTO] * len(statement.params))
        key = (sql, tuple(adapt.types or ()))
        name = self._prepared.get(key)
        if name is None and self._worth_preparing(key):
            name = b"travelsite_%d" % len(self._prepared)
            pgconn.send_prepare(name, sql, param_types=adapt.types)
            self._rows(await self._wait(generators.execute(pgconn)))
            self._prepared[key] = name
        if name is None:
            pgconn.send_query_params(
                sql, params, param_types=adapt.types, param_formats=adapt.formats
            )
        else:
            pgconn.send_query_prepared(name, params, param_formats=adapt.formats)
        return self._rows(await self._wait(generators.execute(pgconn)))

    def _worth_preparing(self, key: tuple[bytes, tuple[int, ...]]) -> bool:
        if self._prepare_after is None or len(self._prepared) >= _MAX_PREPARED:
            return False
        runs = self._runs[key] = self._runs.get(key, 0) + 1
        return runs >= self._prepare_after

    def _rows(self, results: list[Any], index: int = -1) -> Rows:
        """The rows of the result at `index` (None if it has none); the first error raised, as
        psycopg's."""
        for result in results:
            if result.status == _FATAL_ERROR:
                raise psycopg.errors.error_from_result(result, encoding=self._pgconn._encoding)
        chosen = results[index]
        if chosen.status != _TUPLES_OK:
            return None
        self._adapt.set_pgresult(chosen)
        return self._adapt.load_rows(0, chosen.ntuples, tuple)

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Keep the socket watched for reading meanwhile (one registration for many queries).

        Nothing else may wait on this connection meanwhile (psycopg's own calls would take
        the registration over).
        """
        self._loop.add_reader(self._fileno, self._wake, _READY_R)
        self._watched = True
        try:
            yield
        finally:
            self._watched = False
            self._loop.remove_reader(self._fileno)  # a closed socket's is gone already

    def _wake(self, ready: int) -> None:
        self._ready |= ready
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, generator: Any) -> Any:
        """Drive one of psycopg's generators to its end; what it returns."""
        watched = self._watched
        fileno = self._fileno
        loop = self._loop
        try:
            state = next(generator)
            while True:
                writing = state & _WAIT_W
                if writing:
                    loop.add_writer(fileno, self._wake, _READY_W)
                if not watched:
                    loop.add_reader(fileno, self._wake, _READY_R)
                self._ready = 0
                self._waiter = loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
                    if writing:
                        loop.remove_writer(fileno)
                    if not watched:
                        loop.remove_reader(fileno)
                state = generator.send(self._ready)
        except StopIteration as done:
            return done.value


@functools.lru_cache(maxsize=1024)
def _pieces(sql: str) -> tuple[bytes, ...]:
    """`sql` split at its `%s` placeholders (no other `%` is allowed in it), as bytes."""
    pieces = sql.split("%s")
    if any("%" in piece for piece in pieces):
        raise psycopg.ProgrammingError("only %s placeholders are supported here")
    return tuple(piece.encode() for piece in pieces)


@functools.lru_cache(maxsize=1024)
def _numbered(sql: str) -> bytes:
    """`sql` with its `%s` placeholders numbered as the server binds them: `$1`, `$2`, ..."""
    pieces = _pieces(sql)
    numbered = [pieces[0]]
    for number, piece in enumerate(pieces[1:], start=1):
        numbered.append(b"$%d" % number)
        numbered.append(piece)
    return b"".join(numbered)


class _Transaction:
    """One transaction of steps in as few round trips as the steps allow.

    `BEGIN` goes with the first statement; statements that return nothing
    (`Statement.returns_rows`) go with the next one; a statement's `then` writes go with it;
    `COMMIT` goes with the `last` statement, or with the writes that end the steps. A store of
    messages (`BEGIN` and the room lock; the insert, the room update and `COMMIT`) is two round
    trips, not five. Statements that travel together go as one simple-protocol query; a
    statement that returns rows and goes alone is bound by the server and prepared as
    configured (`_Wire`). A statement that fails stops the rest of its query, the `COMMIT`
    included, so the transaction still commits all or nothing.
    """

    def __init__(self, wire: _Wire) -> None:
        self.wire = wire
        self.round_trips = 0
        #: Whether the round trip carrying the COMMIT was sent (it may have committed).
        self.committing = False

    async def run(self, steps: Generator[Statement, Rows, Result]) -> Result:
        wire = self.wire
        with wire.watching():
            together: list[bytes] = [b"BEGIN"]
            try:
                statement = next(steps)
                while True:
                    if not statement.returns_rows:
                        together.append(wire.bound(statement))
                        statement = steps.send(None)
                        continue
                    self.round_trips += 1
                    if not together and not statement.then and not statement.last:
                        rows = await wire.run_alone(statement)
                    else:
                        rows_of = len(together)
                        together.append(wire.bound(statement))
                        together.extend(wire.bound(write) for write in statement.then)
                        if statement.last:
                            self.committing = True
                            together.append(b"COMMIT")
                        rows = await wire.query(b"; ".join(together), rows_of=rows_of)
                        together = []
                    if statement.last:
                        return self._ended(steps, rows)
                    statement = steps.send(rows)
            except StopIteration as done:
                self.committing = True
                self.round_trips += 1
                together.append(b"COMMIT")
                await self.wire.query(b"; ".join(together))
                return done.value

    @staticmethod
    def _ended(steps: Generator[Statement, Rows, Result], rows: Rows) -> Result:
        """What the steps return, given their last statement's rows (already committed)."""
        try:
            statement = steps.send(rows)
        except StopIteration as done:
            return done.value
        raise StepsWentOn(statement)

    async def roll_back(self) -> None:
        """End a transaction a step failed in (a connection that cannot is closed later)."""
        conn = self.wire.conn
        if conn.closed or conn.info.transaction_status == _IDLE:
            return
        try:
            await self.wire.query(b"ROLLBACK")
        except psycopg.Error:
            await conn.close()


_IDLE = psycopg.pq.TransactionStatus.IDLE
_AUTO = PyFormat.AUTO
#: Statements prepared per connection at most (a store's insert has one shape per batch size).
_MAX_PREPARED = 256
_FATAL_ERROR = psycopg.pq.ExecStatus.FATAL_ERROR
_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK
_WAIT_W = int(psycopg.waiting.Wait.W)
_READY_R = int(psycopg.waiting.Ready.R)
_READY_W = int(psycopg.waiting.Ready.W)
