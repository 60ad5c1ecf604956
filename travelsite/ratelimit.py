"""Rate limits shared by every process: token buckets in Redis, updated atomically.

A bucket holds up to `burst` tokens and refills at `per_second`; each action takes one. The
bucket lives in the Redis database of REDIS_URL (one Lua script call per check, or per batch
of checks, using Redis' own clock, so all processes agree); without REDIS_URL (development,
one process) it lives in memory. Limits come from settings.RATE_LIMITS and can be changed
there or by environment.
"""

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from travelsite import metrics, redis_lane

logger = logging.getLogger(__name__)

KEY_PREFIX = "ratelimit:"

# One call takes a token from each bucket of KEYS, in order (a key may repeat), and returns
# {allowed (0/1), seconds to wait (string)} for each, flat. TIME is Redis' clock: one clock
# for all processes. Sent by its SHA (EVALSHA): one short command for a whole batch of sends.
BUCKET_LUA = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local ttl = math.ceil(burst / rate * 1000) + 1000
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out = {}
for _, key in ipairs(KEYS) do
  local state = redis.call('HMGET', key, 'tokens', 'at')
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
  redis.call('HSET', key, 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', key, ttl)
  table.insert(out, allowed)
  table.insert(out, tostring(wait))
end
return out
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
_sync_script: Any = None
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


def _bucket_script() -> Any:
    """BUCKET_LUA on the sync client (EVALSHA, loaded again if Redis lost it)."""
    global _sync_script
    if _sync_script is None:
        _sync_script = _sync_redis().register_script(BUCKET_LUA)
    return _sync_script


def _verdict(rule: Limit, reply: Any) -> "RateLimited | None":
    """None when the reply (allowed, wait) took a token; else the refusal, counted and logged."""
    allowed, wait = int(reply[0]), float(reply[1])
    if allowed:
        return None
    metrics.RATE_LIMIT_HITS.labels(limit=rule.name).inc()
    logger.info("rate limited", extra={"event": "rate_limited", "limit": rule.name, "wait": wait})
    return RateLimited(rule.name, wait)


def _pairs(flat: Sequence[Any]) -> list[tuple[Any, Any]]:
    """BUCKET_LUA's flat answer, one (allowed, wait) per key."""
    return list(zip(flat[::2], flat[1::2], strict=True))


def check(name: str, subject: str | int) -> None:
    """Take one token from `name`'s bucket for `subject`, or raise RateLimited."""
    (verdict,) = check_each(name, [subject])
    if verdict is not None:
        raise verdict


def check_each(name: str, subjects: Sequence[str | int]) -> list["RateLimited | None"]:
    """`check` for several subjects (one Redis call): None where a token was taken."""
    rule = limit(name)
    keys = [_key(rule, str(subject)) for subject in subjects]
    if not settings.REDIS_URL:
        return _verdicts(rule, _memory_replies(rule, keys))
    flat = _bucket_script()(keys=keys, args=[rule.burst, rule.per_second])
    return _verdicts(rule, _pairs(flat))


async def acheck_each(name: str, subjects: Sequence[str | int]) -> list["RateLimited | None"]:
    """`check_each` from async code (one Redis call)."""
    rule = limit(name)
    keys = [_key(rule, str(subject)) for subject in subjects]
    if not settings.REDIS_URL:
        return _verdicts(rule, _memory_replies(rule, keys))
    # On the loop's Redis lane (travelsite.redis_lane): about half the CPU of redis-py's client.
    flat = await redis_lane.script(str(settings.REDIS_URL), BUCKET_LUA)(
        keys=keys, args=[rule.burst, rule.per_second]
    )
    return _verdicts(rule, _pairs(flat))


def _memory_replies(rule: Limit, keys: Sequence[str]) -> list[Any]:
    """What the Lua script would answer for each key, from the in-memory buckets."""
    return [(int(allowed), wait) for allowed, wait in (_memory_take(k, rule) for k in keys)]


def _verdicts(rule: Limit, replies: Sequence[Any]) -> list["RateLimited | None"]:
    return [_verdict(rule, reply) for reply in replies]


async def acheck(name: str, subject: str | int) -> None:
    """`check` from async code."""
    (verdict,) = await acheck_each(name, [subject])
    if verdict is not None:
        raise verdict


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
