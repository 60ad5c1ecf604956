"""Presence and typing timings, from settings or the environment (seconds).

The defaults keep CONTRACT.md's promise: a socket whose process died is forgotten after
`socket_ttl()` plus at most one `sweep_interval()`, 45 + 5 = 50 s < 60 s. Tests start daphne with
small values (e.g. PRESENCE_SOCKET_TTL_SECONDS=5) to see a crash handled quickly.
"""

import os

from django.conf import settings


def _seconds(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name) or default
    return float(value)


def socket_ttl() -> float:
    """How long a socket counts as open without a heartbeat."""
    return _seconds("PRESENCE_SOCKET_TTL_SECONDS", 45.0)


def heartbeat_interval() -> float:
    """How often each process refreshes the expiry of the sockets it holds."""
    return _seconds("PRESENCE_HEARTBEAT_SECONDS", min(15.0, socket_ttl() / 3))


def sweep_interval() -> float:
    """How often some process looks for sockets past their expiry."""
    return _seconds("PRESENCE_SWEEP_INTERVAL_SECONDS", 5.0)


def typing_ttl() -> float:
    """A typist drops out this long after their last `typing_start` (CONTRACT.md: 2 s)."""
    return _seconds("TYPING_TTL_SECONDS", 2.0)


def typing_check_interval() -> float:
    """How often each process looks for typists past their expiry."""
    return _seconds("TYPING_CHECK_INTERVAL_SECONDS", 0.25)


def broadcast_delay() -> float:
    """How long presence changes are coalesced before they are broadcast."""
    return _seconds("PRESENCE_BROADCAST_DELAY_SECONDS", 0.2)


def redis_prefix() -> str:
    return str(getattr(settings, "PRESENCE_REDIS_PREFIX", None) or "presence:")
