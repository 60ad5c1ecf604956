"""Keep the garbage collector's pauses off the sockets' path in a long-running server process.

A full (oldest generation) collection walks every tracked object. After start-up a daphne
process holds several hundred thousand of them (modules, URL patterns, settings, the ORM's
model metadata) that live as long as the process, so each full collection cost 40-80 ms: a
stall of every socket of the process. Moving them to the permanent generation once start-up is
done (`gc.freeze()`, as CPython's docs suggest for servers) leaves the collector only what was
made since: reference cycles still get collected, in a fraction of the time.

Left to itself the collector runs when allocations cross its threshold, that is, in the middle
of whatever allocates: a message being stored and written to its room's sockets waits for it
(young collections took 0.4 ms, middle ones 2-5 ms on a slow machine). `collect_between_events`
runs the same collections from a timer on the event loop instead, so that on a loop that is
not saturated they fall in the gaps between messages; a far higher automatic threshold stays
as the safety net (threads allocate too, and a loop may be blocked).
"""

import asyncio
import gc
import time

from django.conf import settings
from django.urls import get_resolver

from travelsite import metrics

#: The automatic collector's young threshold while the timer collects: it only steps in when
#: the timer has not run for that many allocations (a blocked or saturated loop).
SAFETY_THRESHOLD = 50_000
#: How often the timer looks (seconds), and from how many new objects it collects.
INTERVAL_S = 0.05
YOUNG_OBJECTS = 700
#: Middle and full collections follow CPython's own thresholds, a full one at most once per
#: `FULL_EVERY_S`: CPython also waits until the objects not yet fully collected make up a
#: quarter of the old generation, which Python code cannot see.
FULL_EVERY_S = 30.0

_collecting_on: set[asyncio.AbstractEventLoop] = set()


def freeze_startup_objects() -> None:
    """Load what the first request would load, then exempt all of it from collection."""
    get_resolver().url_patterns  # noqa: B018  (imports every URLconf and view module)
    gc.collect()
    gc.freeze()


def collect_between_events(loop: asyncio.AbstractEventLoop) -> None:
    """Run the collector from a timer on `loop` from now on (once per loop; idempotent)."""
    if not settings.GC_BETWEEN_EVENTS or loop in _collecting_on:
        return
    for old in [other for other in _collecting_on if other.is_closed()]:
        _collecting_on.discard(old)  # tests run many loops
    _collecting_on.add(loop)
    _, middle_after, full_after = gc.get_threshold()
    gc.set_threshold(SAFETY_THRESHOLD, middle_after, full_after)
    last_full = [time.monotonic()]

    def tick() -> None:
        if loop.is_closed():
            return
        young, middle, full = gc.get_count()
        if young >= YOUNG_OBJECTS:
            generation = 0
            if middle >= middle_after:
                generation = 1
                now = time.monotonic()
                if full >= full_after and now - last_full[0] >= FULL_EVERY_S:
                    generation = 2
                    last_full[0] = now
            gc.collect(generation)
            metrics.GC_TIMER_COLLECTIONS.labels(generation=str(generation)).inc()
        loop.call_later(INTERVAL_S, tick)

    loop.call_later(INTERVAL_S, tick)
