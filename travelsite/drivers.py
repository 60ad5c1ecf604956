"""Two settings of the database and Redis drivers that redis-py and psycopg leave off.

Both are process-wide and installed once by travelsite/asgi.py (server processes).

- **Redis commands packed by hiredis on asyncio connections too.** With hiredis installed,
  redis-py parses replies in C on every connection, and its sync connections pack commands with
  `hiredis.pack_command`; its asyncio connections still pack them in Python
  (`AbstractConnection.pack_command`, 10-20 µs a command). A server process sends two or three
  commands per chat message from the event loop (rate limits, the publish, typing).
- **psycopg's query conversion cached for the write path's batch statements.** psycopg turns
  each `%s` query into PostgreSQL's `$n` form with a regular-expression split, and caches the
  result only for queries of at most 50 parameters (so that ORM-made `INSERT ... VALUES` of
  ever-changing lengths do not fill its cache). The message write path's statements for a batch
  of eight sends have 48-57 parameters and were converted afresh every time: 0.3 ms of the
  database thread's 1.6 ms per batch. Their shapes are few (one per batch size), and the cache
  is an LRU of 128 entries, so raising the limit is safe.
"""

from typing import Any

import psycopg._queries
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

#: Parameters up to which psycopg caches a query's conversion (its own default is 50).
CACHED_QUERY_PARAMS = 1000

_PACKER = HiredisRespSerializer()


def _pack_command(_connection: AbstractConnection, *args: Any) -> list[bytes]:
    return _PACKER.pack(*args)


def install_hiredis_packing() -> bool:
    """Pack asyncio connections' commands with hiredis, if it is installed; True if so."""
    if not HIREDIS_AVAILABLE:
        return False
    AbstractConnection.pack_command = _pack_command  # type: ignore[method-assign,assignment]
    return True


def cache_batch_statements() -> None:
    """Let psycopg cache the conversion of queries of up to CACHED_QUERY_PARAMS parameters."""
    psycopg._queries.MAX_CACHED_STATEMENT_PARAMS = max(
        psycopg._queries.MAX_CACHED_STATEMENT_PARAMS, CACHED_QUERY_PARAMS
    )


def install() -> None:
    install_hiredis_packing()
    cache_batch_statements()
