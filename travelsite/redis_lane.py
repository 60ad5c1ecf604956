"""The hot Redis commands of an event loop on one pipelined connection, without redis-py's client.

redis-py's asyncio client spends far more CPU per command than the command costs: each call
takes a connection from its pool (a lock, usage counters, a socket poll to check the
connection is clean), sends through a retry wrapper and, with a socket timeout set, a task of
its own (`wait_for`), and hands the connection back. In-process, an `EVALSHA` of the rate-limit
script cost 170-330 µs of CPU through a registered `Script`, against 100-125 µs on a bare
redis-py `Connection`; under load, redis-py was a seventh of daphne's samples.

A `RedisLane` keeps one redis-py `Connection` (which still connects, authenticates, selects the
database, speaks TLS for `rediss://`, and parses with hiredis) and pipelines on it: commands are
written as they come, without waiting for the previous answer, and one reader task hands the
answers back in order. The lane is for short commands whose answers come back quickly (the rate
limits' and typing's scripts, publishing); a blocking command would hold up every one behind it.

Failures: a command on a connection found dead is sent once more on a new one (as redis-py's
client retries); a command with no answer within `timeout` fails with redis-py's
`TimeoutError`, and the connection is dropped, since later answers can no longer be matched to
their commands. Errors come as redis-py's exceptions (`ConnectionError`, `TimeoutError`,
`ResponseError` and its kinds). Answers are Redis' own replies, as hiredis parses them (no
redis-py response callbacks: `SET` answers b"OK", not True).
"""

import asyncio
import collections
import hashlib
import weakref
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.connection import AbstractConnection

#: Seconds a command may wait for its answer.
DEFAULT_TIMEOUT = 2.0


class _Link:
    """A connection, the commands sent on it still waiting for their answers, and its reader."""

    def __init__(self, conn: AbstractConnection) -> None:
        self.conn = conn
        self.pending: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.reader: asyncio.Task[None] | None = None
        self.broken = False


class RedisLane:
    """One pipelined connection to the Redis of `pool`, for the event loop that uses it."""

    def __init__(self, pool: aioredis.ConnectionPool, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        #: Only makes the connection (which connects, authenticates, selects the database, and
        #: speaks TLS or Sentinel as the pool was configured); none is ever taken from it.
        self._pool = pool
        self.timeout = timeout
        self._link: _Link | None = None
        self._connecting = asyncio.Lock()
        self._scripts: dict[str, BoundScript] = {}

    def script(self, source: str) -> "BoundScript":
        """The Lua script `source` on this lane."""
        bound = self._scripts.get(source)
        if bound is None:
            bound = self._scripts[source] = BoundScript(self, LaneScript(source))
        return bound

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its answer (or raise its error)."""
        return (await self._round((args,)))[0]

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send several commands in one write; their answers, in order. An error answer is
        raised (the first one) once every command has been answered."""
        return await self._round(commands)

    async def run_script(
        self, script: "LaneScript", keys: Sequence[Any], args: Sequence[Any]
    ) -> Any:
        """`EVALSHA` of `script`, loading it first if this Redis does not have it (a restart)."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self.execute(*command)
        except redis_errors.NoScriptError:
            await self.execute("SCRIPT", "LOAD", script.source)
            return await self.execute(*command)

    async def run_script_many(
        self, script: "LaneScript", calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]
    ) -> list[Any]:
        """`run_script` for several (keys, args) calls in one write; their answers, in order.
        Where Redis lacks the script, every call fails alike and all are run again once it is
        loaded, so each call must be safe to run twice."""
        commands = [("EVALSHA", script.sha, len(keys), *keys, *args) for keys, args in calls]
        try:
            return await self.execute_many(commands)
        except redis_errors.NoScriptError:
            await self.execute("SCRIPT", "LOAD", script.source)
            return await self.execute_many(commands)

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            self._break(link, redis_errors.ConnectionError("The Redis lane was closed."))
            await link.conn.disconnect()

    async def _round(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        try:
            return await self._send_and_wait(await self._connected(), commands)
        except redis_errors.ConnectionError:
            # A connection that died while idle (Redis restarted, or closed it): once more on
            # a new one, as redis-py's client retries. A second failure goes to the caller.
            return await self._send_and_wait(await self._connected(), commands)

    async def _send_and_wait(self, link: _Link, commands: Sequence[Sequence[Any]]) -> list[Any]:
        conn = link.conn
        futures = [asyncio.get_running_loop().create_future() for _ in commands]
        link.pending.extend(futures)
        packed = b"".join([hiredis.pack_command(tuple(command)) for command in commands])
        try:
            # With no socket timeout this writes before its first await, so commands go on the
            # wire in the order their futures were queued.
            await conn.send_packed_command(packed, check_health=False)
        except BaseException as error:
            self._break(link, error)
            raise
        try:
            async with asyncio.timeout(self.timeout):
                if len(futures) == 1:
                    return [await futures[0]]
                answers = await asyncio.gather(*futures, return_exceptions=True)
        except TimeoutError:  # asyncio's (the builtin), not redis-py's
            late = redis_errors.TimeoutError(f"Redis did not answer within {self.timeout} s.")
            self._break(link, late)
            raise late from None
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return answers

    async def _connected(self) -> _Link:
        link = self._link
        if link is not None and not link.broken:
            return link
        async with self._connecting:
            if self._link is None or self._link.broken:
                conn = self._pool.make_connection()
                # No socket timeout: with one, every send is a task of its own and the idle
                # reader would time out; the lane times each command instead.
                conn.socket_timeout = None
                await conn.connect()
                link = self._link = _Link(conn)
                link.reader = asyncio.get_running_loop().create_task(self._read(link))
            return self._link

    async def _read(self, link: _Link) -> None:
        """Hand the answers to the commands' futures, in order, for as long as the connection
        lasts (a connection that Redis closes while idle is so found and dropped at once)."""
        try:
            while not link.broken:
                try:
                    answer: Any = await link.conn.read_response(disconnect_on_error=False)
                except redis_errors.ResponseError as error:
                    answer = error
                if not link.pending:
                    raise redis_errors.ConnectionError("Redis answered a command never sent.")
                future = link.pending.popleft()
                if future.done():  # its caller was cancelled or timed out: the answer is dropped
                    continue
                if isinstance(answer, redis_errors.ResponseError):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._break(link, error)
        finally:
            if link.reader is asyncio.current_task():
                link.reader = None

    def _break(self, link: _Link, error: BaseException) -> None:
        """Drop `link` and fail what waits on it: its later answers can no longer be matched."""
        if link.broken:
            return
        link.broken = True
        if self._link is link:
            self._link = None
        if not isinstance(error, redis_errors.ConnectionError | redis_errors.TimeoutError):
            error = redis_errors.ConnectionError(f"Redis connection lost: {error!r}")
        for future in link.pending:
            if not future.done():
                future.set_exception(error)
        link.pending.clear()
        reader = link.reader
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        link.reader = None
        closing = asyncio.get_running_loop().create_task(link.conn.disconnect(nowait=True))
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)


class LaneScript:
    """A Lua script, known to Redis by its SHA."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


class BoundScript:
    """A script on a lane: `await script(keys=..., args=...)`, as redis-py's `Script`."""

    def __init__(self, lane: RedisLane, script: LaneScript) -> None:
        self.lane = lane
        self.script = script

    async def __call__(self, *, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        return await self.lane.run_script(self.script, keys, args)


_PerLoop = dict[tuple[str, bool], RedisLane]
_lanes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _PerLoop]" = (
    weakref.WeakKeyDictionary()
)
#: Disconnections under way (the loop keeps only weak references to its tasks).
_closing: set[asyncio.Task[None]] = set()


def lane(url: str, *, decode_responses: bool = False) -> RedisLane:
    """The running loop's lane to `url` (a connection belongs to the loop it was made on)."""
    per_loop = _lanes.setdefault(asyncio.get_running_loop(), {})
    key = (url, decode_responses)
    found = per_loop.get(key)
    if found is None:
        pool = aioredis.ConnectionPool.from_url(
            url, decode_responses=decode_responses, socket_connect_timeout=2
        )
        found = per_loop[key] = RedisLane(pool)
    return found


def script(url: str, source: str, *, decode_responses: bool = False) -> BoundScript:
    """The Lua script `source` on the running loop's lane to `url`."""
    return lane(url, decode_responses=decode_responses).script(source)
