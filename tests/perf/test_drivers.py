"""Driver settings: psycopg caches the write path's batch statements (travelsite/drivers.py);
redis-py parses with hiredis."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import psycopg._queries

from travelsite import drivers

ROOT = Path(__file__).resolve().parents[2]


def test_asgi_start_up_raises_the_cache_limit() -> None:
    probe = "import travelsite.asgi, psycopg._queries as q; print(q.MAX_CACHED_STATEMENT_PARAMS)"
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "travelsite.settings"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == [str(drivers.CACHED_QUERY_PARAMS)]


def test_a_batch_statement_of_57_parameters_is_converted_once() -> None:
    drivers.cache_batch_statements()
    query = b"UPDATE t SET a = CASE id " + b"WHEN %s THEN %s " * 28 + b"END WHERE id = %s"
    before = psycopg._queries._query2pg.cache_info()
    for _ in range(3):
        pg = psycopg._queries.PostgresQuery(psycopg.adapt.Transformer())
        pg.convert(query, list(range(57)))
    after = psycopg._queries._query2pg.cache_info()

    assert pg.query.count(b"$") == 57
    assert after.hits - before.hits >= 2
    assert after.misses - before.misses <= 1


def test_redis_py_parses_replies_with_hiredis() -> None:
    # pyproject pins hiredis for this: redis-py uses it only if it finds a version it accepts.
    from redis.asyncio.connection import Connection
    from redis.utils import HIREDIS_AVAILABLE

    assert HIREDIS_AVAILABLE
    assert type(Connection()._parser).__name__ == "_AsyncHiredisParser"
