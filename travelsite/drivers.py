"""Settings of the database driver for the hot paths: psycopg's query cache, Django's loader.

**The query cache.**

psycopg turns each `%s` query into PostgreSQL's `$n` form with a regular-expression split, and
caches the result only for queries of at most 50 parameters (so that ORM-made `INSERT ...
VALUES` of ever-changing lengths do not fill its cache). The write path's statements for a
batch of eight sends (chat/writes.py) have 48-57 parameters and were converted afresh every
time: a fifth of the database thread's CPU time per batch (1.98 -> 1.65 ms, median of eight
interleaved rounds). The cache is an LRU of 128 entries; what the higher limit adds to it is one
entry per batch size (inserts of 9 to 64 messages, room updates of 9 or more rooms), so it
costs little memory. Under batches of every size those entries can push other statements out,
which then cost one conversion again (tens of µs) when next run.

**Timestamps.** Django registers its own `timestamptz` loader, a subclass of psycopg's loader
written in Python: a regular expression and three datetimes per value, 3 µs, against 0.14 µs
for psycopg's C loader. That is 150 µs of a 50-message history page and 120 µs of a batch of
sends to ten rooms (the rooms' four timestamps each). With Django's time zone UTC both give the
same values: Django sets each session's TimeZone to UTC and labels what psycopg parsed with
UTC, and psycopg's loader converts to the session's time zone, UTC.

Process-wide; installed by travelsite/asgi.py (server processes).
"""

import datetime
from typing import Any

import psycopg
import psycopg._queries
from django.conf import settings
from django.db.backends.postgresql.psycopg_any import get_adapters_template
from psycopg.pq import Format
from psycopg.types.datetime import TimestamptzLoader

#: Parameters up to which psycopg caches a query's conversion (its own default is 50).
CACHED_QUERY_PARAMS = 1000


def cache_batch_statements() -> None:
    """Let psycopg cache the conversion of queries of up to CACHED_QUERY_PARAMS parameters."""
    psycopg._queries.MAX_CACHED_STATEMENT_PARAMS = max(
        psycopg._queries.MAX_CACHED_STATEMENT_PARAMS, CACHED_QUERY_PARAMS
    )


_TIMESTAMPTZ_OID = psycopg.adapters.types["timestamptz"].oid
#: psycopg's own text loader of `timestamptz`: its C one where psycopg-binary is installed.
_FAST_TIMESTAMPTZ_LOADER: Any = psycopg.adapters.get_loader(_TIMESTAMPTZ_OID, Format.TEXT)


class UtcTimestamptzLoader(TimestamptzLoader):
    """Django's UTC loader (`timezone` is what Django checks for) loading with psycopg's own.

    The C loader cannot be subclassed, so each instance loads with one of its instances.
    """

    timezone = datetime.UTC

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self.load = _FAST_TIMESTAMPTZ_LOADER(oid, context).load  # type: ignore[method-assign]


def load_timestamps_in_c() -> None:
    """Let Django's PostgreSQL connections (and chat.store's) load timestamps with psycopg's C
    loader, when Django's time zone is UTC (its connections' sessions are then in UTC)."""
    if not settings.USE_TZ or settings.TIME_ZONE != "UTC":
        return
    if settings.DATABASES["default"].get("TIME_ZONE") not in (None, "UTC"):
        return
    template = get_adapters_template(True, datetime.UTC)
    template.register_loader("timestamptz", UtcTimestamptzLoader)
