"""The driver settings the server process installs (travelsite/drivers.py)."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg._queries
import pytest
from redis.asyncio.connection import Connection
from redis.connection import PythonRespSerializer

from travelsite import drivers

ROOT = Path(__file__).resolve().parents[2]

COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "key", "é and ü", 1, 2.5, b"\x00raw"),
    ("EVALSHA", "0" * 40, 1, "ratelimit:messages:7", 25, 6.0),
    ("CONFIG GET", "maxmemory"),
    ("PUBLISH", "room.1", b"x" * 10_000),
]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_hiredis_packs_a_command_into_the_same_bytes_as_redis_py(command: tuple[Any, ...]) -> None:
    connection = Connection()
    python_packed = b"".join(
        PythonRespSerializer(connection._buffer_cutoff, connection.encoder.encode).pack(*command)
    )

    assert drivers.install_hiredis_packing()
    assert b"".join(connection.pack_command(*command)) == python_packed


def test_asgi_start_up_installs_both() -> None:
    probe = (
        "import travelsite.asgi, psycopg._queries as q;"
        "from redis.asyncio.connection import AbstractConnection as C;"
        "print(C.pack_command.__module__, q.MAX_CACHED_STATEMENT_PARAMS)"
    )
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "travelsite.settings"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["travelsite.drivers", str(drivers.CACHED_QUERY_PARAMS)]


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
