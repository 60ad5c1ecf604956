"""A client that stops reading cannot grow the server's memory without bound."""

import time
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.conftest import token_for
from tests.e2e.wsclient import ping
from tests.factories import UserFactory
from travelsite import realtime

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

EVENTS = 1000
EVENT_BYTES = 60_000  # 60 MB in all, never read


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_client_that_stops_reading_does_not_grow_server_memory(daphne_factory: Any) -> None:
    server = daphne_factory()
    sleeper = UserFactory.create()
    slow = connect(
        server.ws_url,
        additional_headers={"Authorization": f"Token {token_for(sleeper)}"},
        max_queue=1,
        legacy=True,
    )
    ping(slow)  # signed in and in its user group; from now on it never reads
    before = rss_mib(server.process.pid)
    payload = "x" * EVENT_BYTES
    for n in range(EVENTS):
        realtime.send([realtime.user_group(sleeper.pk)], {"type": "bulk", "n": n, "pad": payload})
    time.sleep(3)
    grown = rss_mib(server.process.pid) - before
    slow.close()
    total_mib = EVENTS * EVENT_BYTES / 2**20
    assert grown < total_mib / 3, f"server grew {grown:.1f} MiB of {total_mib:.0f} MiB unread"
    assert "dropping a WebSocket client that stopped reading" in server.log()
