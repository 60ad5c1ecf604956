"""Who is connected, shared by every process: the presence registry in Redis.

Every open socket is a member of its user's sorted set, scored by the time its heartbeat expires:

    <prefix>user:<user id>   ZSET  socket id -> expiry (unix seconds)
    <prefix>sockets          ZSET  "<user id>:<socket id>" -> expiry (all sockets, for the sweeper)
    <prefix>versions         HASH  user id -> version of their last transition
    <prefix>lock:<name>      STRING  a short lock (only one process sweeps at a time)

A user is online while their set is not empty. Each operation is one Lua script, so the check
"was the set empty before / is it empty now" and the change happen atomically: two processes
opening or closing sockets of one user at the same moment can never both (or neither) report the
transition. Every transition gets a larger version than the user's previous one, which orders
transitions for the database (a late write of an older one never wins) and for the broadcast
coalescing.

A socket whose process died is never closed; its expiry passes and `sweep` removes it (and
reports the users it leaves with no socket). Heartbeats only refresh sockets still registered
(`ZADD XX`), so a heartbeat racing a close cannot resurrect a closed socket; the caller re-opens
a socket it still holds that was swept meanwhile (see chat/presence_ws.py).

The scripts touch per-user keys derived inside the script (the sweeper cannot know them in
advance), which is fine on a single Redis (not Redis Cluster). With REDIS_URL unset (one dev
process), `MemoryPresenceState` keeps the same state in this process.
"""

import asyncio
import secrets
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis
from django.conf import settings

from presence import conf
from travelsite import redis_lane


@dataclass(frozen=True)
class Transition:
    """A user went online (their first socket opened) or offline (their last one went)."""

    user_id: int
    is_online: bool
    #: Orders the user's transitions (larger: later).
    version: int
    #: When it happened (unix seconds).
    at: float


class PresenceState(Protocol):
    async def socket_opened(
        self, *, user_id: int, socket_id: str, now: float | None = None
    ) -> Transition | None: ...

    async def socket_closed(
        self, *, user_id: int, socket_id: str, now: float | None = None
    ) -> Transition | None: ...

    async def heartbeat(
        self, *, sockets: Iterable[tuple[int, str]], now: float | None = None
    ) -> list[tuple[int, str]]:
        """Refresh the sockets' expiry; returns those no longer registered (swept)."""
        ...

    async def sweep(self, *, now: float | None = None, limit: int = 1000) -> list[Transition]:
        """Forget sockets past their expiry; returns the users left with none."""
        ...

    async def socket_count(self, *, user_id: int) -> int: ...

    async def try_lock(self, *, name: str, seconds: float) -> bool: ...


# --- Redis ------------------------------------------------------------------------------------

# A transition's version: the Redis server's clock in microseconds (one clock for every process),
# bumped past the user's last version if need be. It keeps increasing even if Redis loses its
# data, so the database never takes a fresh transition for a stale one.
_NEXT_VERSION = """
local function next_version(versions, uid)
  local t = redis.call('TIME')
  local v = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local old = tonumber(redis.call('HGET', versions, uid) or '0')
  if v <= old then v = old + 1 end
  redis.call('HSET', versions, uid, string.format('%d', v))
  return v
end
"""

_OPEN = (
    _NEXT_VERSION
    + """
local was = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
if was == 0 then
  return next_version(KEYS[3], ARGV[4])
end
return 0
"""
)

_HEARTBEAT = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
"""

_CLOSE = (
    _NEXT_VERSION
    + """
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 and redis.call('ZCARD', KEYS[1]) == 0 then
  return next_version(KEYS[3], ARGV[3])
end
return 0
"""
)

_SWEEP = (
    _NEXT_VERSION
    + """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, member in ipairs(dead) do
  redis.call('ZREM', KEYS[1], member)
  local sep = string.find(member, ':', 1, true)
  local uid = string.sub(member, 1, sep - 1)
  local sid = string.sub(member, sep + 1)
  local ukey = ARGV[3] .. uid
  if redis.call('ZREM', ukey, sid) == 1 and redis.call('ZCARD', ukey) == 0 then
    table.insert(out, uid)
    table.insert(out, next_version(KEYS[2], uid))
  end
end
return out
"""
)

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]]" = (
    weakref.WeakKeyDictionary()
)
_sync_clients: dict[str, redis.Redis] = {}


def async_client(url: str) -> aioredis.Redis:
    """A client for `url` on the running event loop (redis.asyncio pools are loop-bound)."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get(url)
    if client is None:
        client = aioredis.Redis.from_url(url, decode_responses=True)
        per_loop[url] = client
    return client


def async_script(url: str, source: str) -> redis_lane.BoundScript:
    """`source` on the running loop's Redis lane to `url` (travelsite.redis_lane): these
    scripts run on every typing frame, sent message and socket change."""
    return redis_lane.script(url, source, decode_responses=True)


def sync_client(url: str) -> redis.Redis:
    """A thread-safe client for sync callers (e.g. a service after its transaction commits)."""
    client = _sync_clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, decode_responses=True)
        _sync_clients[url] = client
    return client


class RedisPresenceState:
    def __init__(self, url: str, *, prefix: str, ttl: float | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self._ttl = ttl

    @property
    def ttl(self) -> float:
        return self._ttl if self._ttl is not None else conf.socket_ttl()

    def _user_key(self, user_id: int | str) -> str:
        return f"{self.prefix}user:{user_id}"

    @property
    def _sockets_key(self) -> str:
        return f"{self.prefix}sockets"

    @property
    def _versions_key(self) -> str:
        return f"{self.prefix}versions"

    async def _eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return await async_script(self.url, script)(keys=keys, args=args)

    async def socket_opened(
        self, *, user_id: int, socket_id: str, now: float | None = None
    ) -> Transition | None:
        now = time.time() if now is None else now
        version = await self._eval(
            _OPEN,
            [self._user_key(user_id), self._sockets_key, self._versions_key],
            [socket_id, f"{user_id}:{socket_id}", now + self.ttl, user_id],
        )
        if not version:
            return None
        return Transition(user_id=user_id, is_online=True, version=int(version), at=now)

    async def socket_closed(
        self, *, user_id: int, socket_id: str, now: float | None = None
    ) -> Transition | None:
        now = time.time() if now is None else now
        version = await self._eval(
            _CLOSE,
            [self._user_key(user_id), self._sockets_key, self._versions_key],
            [socket_id, f"{user_id}:{socket_id}", user_id],
        )
        if not version:
            return None
        return Transition(user_id=user_id, is_online=False, version=int(version), at=now)

    async def heartbeat(
        self, *, sockets: Iterable[tuple[int, str]], now: float | None = None
    ) -> list[tuple[int, str]]:
        pairs = list(sockets)
        if not pairs:
            return []
        now = time.time() if now is None else now
        # Safe to run twice (refreshes only), as `run_script_many` may.
        script = async_script(self.url, _HEARTBEAT)
        results = await script.lane.run_script_many(
            script.script,
            [
                (
                    [self._user_key(user_id), self._sockets_key],
                    [socket_id, f"{user_id}:{socket_id}", now + self.ttl],
                )
                for user_id, socket_id in pairs
            ],
        )
        return [pair for pair, found in zip(pairs, results, strict=True) if not found]

    async def sweep(self, *, now: float | None = None, limit: int = 1000) -> list[Transition]:
        now = time.time() if now is None else now
        flat = await self._eval(
            _SWEEP,
            [self._sockets_key, self._versions_key],
            [now, limit, self._user_key("")],
        )
        return [
            Transition(user_id=int(flat[i]), is_online=False, version=int(flat[i + 1]), at=now)
            for i in range(0, len(flat), 2)
        ]

    async def socket_count(self, *, user_id: int) -> int:
        return int(await async_client(self.url).zcard(self._user_key(user_id)))

    async def try_lock(self, *, name: str, seconds: float) -> bool:
        client = async_client(self.url)
        locked = await client.set(
            f"{self.prefix}lock:{name}",
            secrets.token_hex(8),
            nx=True,
            px=max(int(seconds * 1000), 1),
        )
        return bool(locked)


# --- One process (no REDIS_URL) ---------------------------------------------------------------


class MemoryPresenceState:
    """The same state in this process's memory: for a single process without Redis."""

    def __init__(self, *, ttl: float | None = None) -> None:
        self._ttl = ttl
        self.sockets: dict[int, dict[str, float]] = {}
        self.versions: dict[int, int] = {}
        self.locks: dict[str, float] = {}

    @property
    def ttl(self) -> float:
        return self._ttl if self._ttl is not None else conf.socket_ttl()

    def _transition(self, user_id: int, *, is_online: bool, now: float) -> Transition:
        version = self.versions.get(user_id, 0) + 1
        self.versions[user_id] = version
        return Transition(user_id=user_id, is_online=is_online, version=version, at=now)

    async def socket_opened(
        self, *, user_id: int, socket_id: str, now: float | None = None
    ) -> Transition | None:
        now = time.time() if now is None else now
        mine = self.sockets.setdefault(user_id, {})
        was_empty = not mine
        mine[socket_id] = now + self.ttl
        return self._transition(user_id, is_online=True, now=now) if was_empty else None

    async def socket_closed(
        self, *, user_id: int, socket_id: str, now: float | None = None
    ) -> Transition | None:
        now = time.time() if now is None else now
        mine = self.sockets.get(user_id, {})
        if mine.pop(socket_id, None) is None or mine:
            return None
        self.sockets.pop(user_id, None)
        return self._transition(user_id, is_online=False, now=now)

    async def heartbeat(
        self, *, sockets: Iterable[tuple[int, str]], now: float | None = None
    ) -> list[tuple[int, str]]:
        now = time.time() if now is None else now
        missing = []
        for user_id, socket_id in sockets:
            mine = self.sockets.get(user_id, {})
            if socket_id in mine:
                mine[socket_id] = now + self.ttl
            else:
                missing.append((user_id, socket_id))
        return missing

    async def sweep(self, *, now: float | None = None, limit: int = 1000) -> list[Transition]:
        now = time.time() if now is None else now
        gone = []
        for user_id, mine in list(self.sockets.items()):
            for socket_id, expiry in list(mine.items()):
                if expiry <= now:
                    del mine[socket_id]
            if not mine:
                del self.sockets[user_id]
                gone.append(self._transition(user_id, is_online=False, now=now))
        return gone

    async def socket_count(self, *, user_id: int) -> int:
        return len(self.sockets.get(user_id, {}))

    async def try_lock(self, *, name: str, seconds: float) -> bool:
        now = time.monotonic()
        if self.locks.get(name, 0) > now:
            return False
        self.locks[name] = now + seconds
        return True


_memory_state = MemoryPresenceState()


def presence_state() -> PresenceState:
    """The registry every process shares (Redis), or this process's own without REDIS_URL."""
    url = getattr(settings, "REDIS_URL", None)
    if url:
        return RedisPresenceState(url, prefix=conf.redis_prefix())
    return _memory_state
