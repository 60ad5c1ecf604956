"""Driver settings: psycopg caches the write path's batch statements and loads timestamps in C
(travelsite/drivers.py); redis-py parses with hiredis."""

import datetime
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import psycopg._queries
import pytest
from psycopg.pq import Format

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


def test_asgi_start_up_loads_timestamps_with_psycopgs_loader() -> None:
    probe = (
        "import datetime, travelsite.asgi\n"
        "from django.db.backends.postgresql.psycopg_any import get_adapters_template\n"
        "from psycopg.pq import Format\n"
        "t = get_adapters_template(True, datetime.UTC)\n"
        "print(t.get_loader(t.types['timestamptz'].oid, Format.TEXT).__name__)"
    )
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "travelsite.settings"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["UtcTimestamptzLoader"]


@pytest.mark.services
@pytest.mark.django_db
def test_timestamps_load_as_djangos_loader_loads_them_in_c() -> None:
    from django.db import connection
    from django.db.backends.postgresql.psycopg_any import get_adapters_template, register_tzloader

    drivers.load_timestamps_in_c()
    params = connection.get_connection_params()
    sent = datetime.datetime(2026, 6, 1, 10, 30, 0, 500_000, tzinfo=datetime.UTC)
    query = (
        "SELECT %s::timestamptz, '2026-06-01 12:30:00.5+02'::timestamptz, '2026-01-01'::timestamptz"
    )
    with psycopg.connect(**params) as fast:
        fast.execute("SET TIME ZONE 'UTC'")  # as Django sets it
        loader = fast.adapters.get_loader(fast.adapters.types["timestamptz"].oid, Format.TEXT)
        fast_row = fast.execute(query, [sent]).fetchone()
        # The same connection with Django's own (Python) loader.
        register_tzloader(datetime.UTC, fast)
        django_row = fast.execute(query, [sent]).fetchone()

    assert loader is drivers.UtcTimestamptzLoader
    assert get_adapters_template(True, datetime.UTC) is params["context"]
    assert fast_row == django_row
    assert fast_row is not None and fast_row[0] == fast_row[1] == sent
    assert all(value.tzinfo is datetime.UTC for value in fast_row)
    instance = loader(fast.adapters.types["timestamptz"].oid)
    assert type(instance.load.__self__).__module__.startswith("psycopg_binary")  # type: ignore[attr-defined]
