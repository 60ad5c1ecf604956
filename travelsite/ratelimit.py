"""Rate limits shared by every process: token buckets in Redis, updated atomically.

A bucket holds up to `burst` tokens and refills at `per_second`; each action takes one. The
bucket lives in the Redis database of REDIS_URL (one Lua script per check, using Redis' own
clock, so all processes agree); without REDIS_URL (development, one process) it lives in
memory. Limits come from settings.RATE_LIMITS and can be changed there or by environment.
"""

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

from travelsite import metrics

logger = logging.getLogger(__name__)

KEY_PREFIX = "ratelimit:"

# Returns {allowed (0/1), seconds to wait (string)}. TIME is Redis' clock: one clock for all.
BUCKET_LUA = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class RateLimited(Exception):
    """Too many actions; try again after `retry_after` seconds."""

    def __init__(self, limit: str, retry_after: float) -> None:
        super().__init__(f"Rate limited ({limit}); retry after {retry_after:.2f} s.")
        self.limit = limit
        self.retry_after = max(round(retry_after, 2), 0.01)


@dataclass(frozen=True)
class Limit:
    name: str
    burst: int
    per_second: float


def limit(name: str) -> Limit:
    burst, per_second = settings.RATE_LIMITS[name]
    return Limit(name=name, burst=int(burst), per_second=float(per_second))


# --- Backends -----------------------------------------------------------------------------------

_sync_client: redis.Redis | None = None
_async_clients: dict[int, aioredis.Redis] = {}
_memory: dict[str, tuple[float, float]] = {}
_memory_lock = threading.Lock()


def _key(rule: Limit, subject: str) -> str:
    return f"{KEY_PREFIX}{rule.name}:{subject}"


def _memory_take(key: str, rule: Limit) -> tuple[bool, float]:
    now = time.monotonic()
    with _memory_lock:
        tokens, at = _memory.get(key, (float(rule.burst), now))
        tokens = min(rule.burst, tokens + (now - at) * rule.per_second)
        if tokens >= 1:
            _memory[key] = (tokens - 1, now)
            return True, 0.0
        _memory[key] = (tokens, now)
        return False, (1 - tokens) / rule.per_second


def _sync_redis() -> redis.Redis:
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(
            str(settings.REDIS_URL), socket_connect_timeout=2, socket_timeout=2
        )
    return _sync_client


def _async_redis() -> aioredis.Redis:
    import asyncio

    loop_id = id(asyncio.get_running_loop())
    client = _async_clients.get(loop_id)
    if client is None:
        client = aioredis.Redis.from_url(
            str(settings.REDIS_URL), socket_connect_timeout=2, socket_timeout=2
        )
        _async_clients[loop_id] = client
    return client


def _verdict(rule: Limit, result: Any) -> None:
    allowed, wait = int(result[0]), float(result[1])
    if not allowed:
        metrics.RATE_LIMIT_HITS.labels(limit=rule.name).inc()
        logger.info(
            "rate limited", extra={"event": "rate_limited", "limit": rule.name, "wait": wait}
        )
        raise RateLimited(rule.name, wait)


def check(name: str, subject: str | int) -> None:
    """Take one token from `name`'s bucket for `subject`, or raise RateLimited."""
    rule = limit(name)
    key = _key(rule, str(subject))
    if not settings.REDIS_URL:
        allowed, wait = _memory_take(key, rule)
        _verdict(rule, (int(allowed), wait))
        return
    result = _sync_redis().eval(BUCKET_LUA, 1, key, rule.burst, rule.per_second)
    _verdict(rule, result)


def check_each(name: str, subjects: list[str | int]) -> list["RateLimited | None"]:
    """`check` for several subjects (one Redis round trip): None where a token was taken."""
    rule = limit(name)
    keys = [_key(rule, str(subject)) for subject in subjects]
    if not settings.REDIS_URL:
        replies = _memory_replies(rule, keys)
    else:
        pipeline = _sync_redis().pipeline(transaction=False)
        for key in keys:
            pipeline.eval(BUCKET_LUA, 1, key, rule.burst, rule.per_second)
        replies = pipeline.execute()
    return _verdicts(rule, replies)


async def acheck_each(name: str, subjects: Sequence[str | int]) -> list["RateLimited | None"]:
    """`check_each` from async code (one Redis round trip)."""
    rule = limit(name)
    keys = [_key(rule, str(subject)) for subject in subjects]
    if not settings.REDIS_URL:
        return _verdicts(rule, _memory_replies(rule, keys))
    pipeline = _async_redis().pipeline(transaction=False)
    for key in keys:
        pipeline.eval(BUCKET_LUA, 1, key, rule.burst, rule.per_second)
    return _verdicts(rule, await pipeline.execute())


def _memory_replies(rule: Limit, keys: Sequence[str]) -> list[Any]:
    """What the Lua script would answer for each key, from the in-memory buckets."""
    return [(int(allowed), wait) for allowed, wait in (_memory_take(k, rule) for k in keys)]


def _verdicts(rule: Limit, replies: Sequence[Any]) -> list["RateLimited | None"]:
    verdicts: list[RateLimited | None] = []
    for reply in replies:
        try:
            _verdict(rule, reply)
            verdicts.append(None)
        except RateLimited as limited:
            verdicts.append(limited)
    return verdicts


async def acheck(name: str, subject: str | int) -> None:
    """`check` from async code."""
    rule = limit(name)
    key = _key(rule, str(subject))
    if not settings.REDIS_URL:
        allowed, wait = _memory_take(key, rule)
        _verdict(rule, (int(allowed), wait))
        return
    result = await _async_redis().eval(  # type: ignore[misc]
        BUCKET_LUA, 1, key, rule.burst, rule.per_second
    )
    _verdict(rule, result)


class LocalBucket:
    """A per-socket token bucket in memory: the cheap first line against frame floods."""

    def __init__(self, burst: int, per_second: float) -> None:
        self.burst = burst
        self.per_second = per_second
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second
