"""PostgreSQL restarts or crashes while messages flow: sends fail clearly or succeed, and nothing
acknowledged is lost."""

import json
import os
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest

from tests.conftest import ROOT
from tests.faults.client import ResilientChatClient
from tests.faults.conftest import PostgresServer

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SETUP = """
import json
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from chat import services
staff = User.objects.create_user("staff", password="x", is_staff=True)
alice = User.objects.create_user("alice", password="x")
room, _ = services.public_room_create_or_join(user=staff, name="PG")
services.public_room_create_or_join(user=alice, name="PG")
print(json.dumps({"room": room.pk, "token": Token.objects.create(user=alice).key}))
"""


def manage(database_url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "0", "SECURE_SSL_REDIRECT": "0"}
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def chatting_on(pg: PostgresServer, daphne_factory: Any) -> ResilientChatClient:
    """A daphne on `pg` (migrated, a room and a user made) and that user's client in the room."""
    manage(pg.url, "migrate", "--noinput")
    setup = json.loads(manage(pg.url, "shell", "-c", SETUP).strip().splitlines()[-1])
    server = daphne_factory(DATABASE_URL=pg.url, DB_POOL_TIMEOUT="2")
    client = ResilientChatClient(server.ws_url, setup["token"], setup["room"])
    assert client.connect(time.monotonic() + 10)
    return client


def stored_client_ids(pg: PostgresServer) -> set[str]:
    with psycopg.connect(pg.url.replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute("SELECT client_id FROM chat_chatmessage").fetchall()
    return {row[0] for row in rows}


def test_postgres_restart_while_messages_flow(
    daphne_factory: Any, private_postgres: PostgresServer
) -> None:
    client = chatting_on(private_postgres, daphne_factory)
    assert [client.send_message(f"before {n}") for n in range(5)] == ["acked"] * 5

    private_postgres.stop("fast")
    during = []
    outage_end = time.monotonic() + 3
    while time.monotonic() < outage_end:
        if client.ws is None:
            client.connect(time.monotonic() + 0.5)
        during.append(client.send_message("during", timeout=4))
    assert set(during) <= {"acked", "refused:unavailable", "disconnected"}
    assert "refused:unavailable" in during or "disconnected" in during

    private_postgres.start()
    assert client.healthy(time.monotonic() + 20), (
        "sending did not resume after PostgreSQL came back"
    )
    assert client.send_message("after") == "acked"
    assert set(client.acked) <= stored_client_ids(private_postgres)
    client.close()


def test_a_database_crash_loses_no_acknowledged_message(
    daphne_factory: Any, private_postgres: PostgresServer
) -> None:
    """Messages are broadcast once committed, before their commit is on disk, and acknowledged
    only once it is. Here PostgreSQL leaves what does not wait for the disk in its memory for up
    to 10 s, and then crashes: every acknowledged message must be there after it restarts."""
    private_postgres.stop("fast")
    private_postgres.settings = ("wal_writer_delay=10s",)
    private_postgres.start()
    client = chatting_on(private_postgres, daphne_factory)
    assert [client.send_message(f"before the crash {n}") for n in range(10)] == ["acked"] * 10
    # The room heard each message, the sender's socket included (the pages show their own
    # message as sent only on its ack).
    assert set(client.acked.values()) <= client.received | {max(client.acked.values())}

    private_postgres.stop("immediate")  # what a crash of the server does: no shutdown flush
    private_postgres.start()

    assert set(client.acked) <= stored_client_ids(private_postgres)
    client.close()
