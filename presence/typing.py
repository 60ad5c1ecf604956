"""Who is typing where, shared by every process (Redis); nothing here touches the database.

    <prefix>typing:room:<room id>   ZSET  user id -> expiry (unix seconds)
    <prefix>typing:all              ZSET  "<room id>:<user id>" -> expiry (for the expiry check)

Every operation is one Lua script returning whether the room's set of typists changed and who
is typing there now, so callers announce exactly the changes: a repeated `typing_start` inside
the window only pushes the expiry back, and an expiry is removed (and so announced) by exactly
one process however many run the check. With REDIS_URL unset, `MemoryTypingState` does the
same in this process.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings

from presence import conf
from presence.state import async_client, async_script, sync_client


@dataclass(frozen=True)
class TypingChange:
    """The typists of a room after a change, the most recent `typing_start` last."""

    room_id: int
    user_ids: list[int]


class TypingState(Protocol):
    async def start(
        self, *, room_id: int, user_id: int, now: float | None = None
    ) -> TypingChange | None: ...

    async def stop(
        self, *, room_id: int, user_id: int, now: float | None = None
    ) -> TypingChange | None: ...

    async def stop_many(
        self, *, pairs: Sequence[tuple[int, int]], now: float | None = None
    ) -> list[TypingChange]: ...

    def stop_sync(
        self, *, room_id: int, user_id: int, now: float | None = None
    ) -> TypingChange | None: ...

    async def expire(self, *, now: float | None = None, limit: int = 1000) -> list[TypingChange]:
        """Drop typists past their expiry; the rooms whose typists changed."""
        ...

    async def typists(self, *, room_id: int, now: float | None = None) -> list[int]: ...


_START = """
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local changed = 0
if (not old) or tonumber(old) <= tonumber(ARGV[4]) then
  changed = 1
end
return {changed, redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[4], '+inf')}
"""

# Stops (room, user) pairs, one or a batch in one call: KEYS[1] is the all-typists set, KEYS[i]
# (i > 1) the room of pair i - 1; ARGV[1] the time, then user id and member per pair. Per pair
# {changed, the room's typists now}.
_STOP = """
local out = {}
for i = 2, #KEYS do
  local user, member = ARGV[2 * i - 2], ARGV[2 * i - 1]
  redis.call('ZREM', KEYS[1], member)
  if redis.call('ZREM', KEYS[i], user) == 1 then
    out[#out + 1] = {1, redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. ARGV[1], '+inf')}
  else
    out[#out + 1] = {0, {}}
  end
end
return out
"""

_EXPIRE = """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local seen = {}
local rooms = {}
for _, member in ipairs(dead) do
  redis.call('ZREM', KEYS[1], member)
  local sep = string.find(member, ':', 1, true)
  local rid = string.sub(member, 1, sep - 1)
  local uid = string.sub(member, sep + 1)
  local rkey = ARGV[3] .. rid
  local score = redis.call('ZSCORE', rkey, uid)
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    redis.call('ZREM', rkey, uid)
    if not seen[rid] then
      seen[rid] = true
      table.insert(rooms, rid)
    end
  end
end
local out = {}
for _, rid in ipairs(rooms) do
  table.insert(out, rid)
  table.insert(out, redis.call('ZRANGEBYSCORE', ARGV[3] .. rid, '(' .. ARGV[1], '+inf'))
end
return out
"""


class RedisTypingState:
    def __init__(self, url: str, *, prefix: str, ttl: float | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self._ttl = ttl

    @property
    def ttl(self) -> float:
        return self._ttl if self._ttl is not None else conf.typing_ttl()

    def _room_key(self, room_id: int | str) -> str:
        return f"{self.prefix}typing:room:{room_id}"

    @property
    def _all_key(self) -> str:
        return f"{self.prefix}typing:all"

    @staticmethod
    def _change(room_id: int, result: Any) -> TypingChange | None:
        changed, members = result
        if not changed:
            return None
        return TypingChange(room_id=room_id, user_ids=[int(m) for m in members])

    async def start(
        self, *, room_id: int, user_id: int, now: float | None = None
    ) -> TypingChange | None:
        now = time.time() if now is None else now
        result = await async_script(self.url, _START)(
            keys=[self._room_key(room_id), self._all_key],
            args=[
                user_id,
                f"{room_id}:{user_id}",
                now + self.ttl,
                now,
                int((self.ttl + 60) * 1000),
            ],
        )
        return self._change(room_id, result)

    async def stop(
        self, *, room_id: int, user_id: int, now: float | None = None
    ) -> TypingChange | None:
        now = time.time() if now is None else now
        keys, args = self._stop_call([(room_id, user_id)], now)
        (result,) = await async_script(self.url, _STOP)(keys=keys, args=args)
        return self._change(room_id, result)

    async def stop_many(
        self, *, pairs: Sequence[tuple[int, int]], now: float | None = None
    ) -> list[TypingChange]:
        """`stop` for several (room, user) pairs in one round trip (a batch of sent messages)."""
        if not pairs:
            return []
        now = time.time() if now is None else now
        # One script call (EVALSHA): a pipeline of scripts also asks SCRIPT EXISTS first.
        keys, args = self._stop_call(pairs, now)
        results = await async_script(self.url, _STOP)(keys=keys, args=args)
        changes = [self._change(room_id, r) for (room_id, _), r in zip(pairs, results, strict=True)]
        return [change for change in changes if change is not None]

    def stop_sync(
        self, *, room_id: int, user_id: int, now: float | None = None
    ) -> TypingChange | None:
        now = time.time() if now is None else now
        keys, args = self._stop_call([(room_id, user_id)], now)
        results: Any = sync_client(self.url).eval(_STOP, len(keys), *keys, *args)
        (result,) = results
        return self._change(room_id, result)

    def _stop_call(
        self, pairs: Sequence[tuple[int, int]], now: float
    ) -> tuple[list[str], list[Any]]:
        """`_STOP`'s keys and arguments for these (room, user) pairs."""
        keys = [self._all_key, *(self._room_key(room_id) for room_id, _ in pairs)]
        args = [now, *(v for room_id, user_id in pairs for v in (user_id, f"{room_id}:{user_id}"))]
        return keys, args

    async def expire(self, *, now: float | None = None, limit: int = 1000) -> list[TypingChange]:
        now = time.time() if now is None else now
        flat = await async_script(self.url, _EXPIRE)(
            keys=[self._all_key], args=[now, limit, self._room_key("")]
        )
        return [
            TypingChange(room_id=int(flat[i]), user_ids=[int(m) for m in flat[i + 1]])
            for i in range(0, len(flat), 2)
        ]

    async def typists(self, *, room_id: int, now: float | None = None) -> list[int]:
        now = time.time() if now is None else now
        members = await async_client(self.url).zrangebyscore(
            self._room_key(room_id), f"({now}", "+inf"
        )
        return [int(m) for m in members]


class MemoryTypingState:
    """The same in this process's memory: for a single process without Redis."""

    def __init__(self, *, ttl: float | None = None) -> None:
        self._ttl = ttl
        self.rooms: dict[int, dict[int, float]] = {}

    @property
    def ttl(self) -> float:
        return self._ttl if self._ttl is not None else conf.typing_ttl()

    def _current(self, room_id: int, now: float) -> list[int]:
        typists = self.rooms.get(room_id, {})
        return [uid for uid, expiry in sorted(typists.items(), key=lambda i: i[1]) if expiry > now]

    async def start(
        self, *, room_id: int, user_id: int, now: float | None = None
    ) -> TypingChange | None:
        now = time.time() if now is None else now
        typists = self.rooms.setdefault(room_id, {})
        old = typists.get(user_id)
        typists[user_id] = now + self.ttl
        if old is not None and old > now:
            return None
        return TypingChange(room_id=room_id, user_ids=self._current(room_id, now))

    async def stop(
        self, *, room_id: int, user_id: int, now: float | None = None
    ) -> TypingChange | None:
        return self.stop_sync(room_id=room_id, user_id=user_id, now=now)

    async def stop_many(
        self, *, pairs: Sequence[tuple[int, int]], now: float | None = None
    ) -> list[TypingChange]:
        changes = [await self.stop(room_id=r, user_id=u, now=now) for r, u in pairs]
        return [change for change in changes if change is not None]

    def stop_sync(
        self, *, room_id: int, user_id: int, now: float | None = None
    ) -> TypingChange | None:
        now = time.time() if now is None else now
        typists = self.rooms.get(room_id, {})
        if typists.pop(user_id, None) is None:
            return None
        if not typists:
            self.rooms.pop(room_id, None)
        return TypingChange(room_id=room_id, user_ids=self._current(room_id, now))

    async def expire(self, *, now: float | None = None, limit: int = 1000) -> list[TypingChange]:
        now = time.time() if now is None else now
        changes = []
        for room_id, typists in list(self.rooms.items()):
            dead = [uid for uid, expiry in typists.items() if expiry <= now]
            if not dead:
                continue
            for uid in dead:
                del typists[uid]
            changes.append(TypingChange(room_id=room_id, user_ids=self._current(room_id, now)))
            if not typists:
                del self.rooms[room_id]
        return changes

    async def typists(self, *, room_id: int, now: float | None = None) -> list[int]:
        return self._current(room_id, time.time() if now is None else now)


_memory_state = MemoryTypingState()


def typing_state() -> TypingState:
    """The typists every process shares (Redis), or this process's own without REDIS_URL."""
    url = getattr(settings, "REDIS_URL", None)
    if url:
        return RedisTypingState(url, prefix=conf.redis_prefix())
    return _memory_state
