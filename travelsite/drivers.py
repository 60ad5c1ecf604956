"""A setting of the database driver that psycopg leaves low for the message write path.

psycopg turns each `%s` query into PostgreSQL's `$n` form with a regular-expression split, and
caches the result only for queries of at most 50 parameters (so that ORM-made `INSERT ...
VALUES` of ever-changing lengths do not fill its cache). The write path's statements for a
batch of eight sends (chat/writes.py) have 48-57 parameters and were converted afresh every
time: a fifth of the database thread's CPU time per batch (1.98 -> 1.65 ms, median of eight
interleaved rounds). The cache is an LRU of 128 entries; what the higher limit adds to it is one
entry per batch size (inserts of 9 to 64 messages, room updates of 9 or more rooms), so it
costs little memory. Under batches of every size those entries can push other statements out,
which then cost one conversion again (tens of µs) when next run.

Process-wide; installed by travelsite/asgi.py (server processes).
"""

import psycopg._queries

#: Parameters up to which psycopg caches a query's conversion (its own default is 50).
CACHED_QUERY_PARAMS = 1000


def cache_batch_statements() -> None:
    """Let psycopg cache the conversion of queries of up to CACHED_QUERY_PARAMS parameters."""
    psycopg._queries.MAX_CACHED_STATEMENT_PARAMS = max(
        psycopg._queries.MAX_CACHED_STATEMENT_PARAMS, CACHED_QUERY_PARAMS
    )
