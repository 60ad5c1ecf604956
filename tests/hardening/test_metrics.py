"""/metrics: Prometheus text for staff and the scrape token; 401/403 for others."""

import urllib.request
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chat import services
from tests.conftest import DaphneServer, token_for
from tests.e2e.wsclient import open_socket, ping
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

REQUIRED = [
    "travelsite_ws_connections",
    "travelsite_chat_messages_total",
    "travelsite_presence_changes_total",
    "travelsite_notifications_created_total",
    "travelsite_notifications_delivered_total",
    "travelsite_rate_limit_hits_total",
    "travelsite_layer_send_failures_total",
]


def test_anonymous_is_401(client: Client) -> None:
    assert client.get("/metrics").status_code == 401


def test_non_staff_is_403(client: Client, user: User) -> None:
    client.force_login(user)
    assert client.get("/metrics").status_code == 403
    assert (
        Client().get("/metrics", HTTP_AUTHORIZATION=f"Token {token_for(user)}").status_code == 403
    )


def test_staff_session_and_token_get_prometheus_text(client: Client) -> None:
    staff = StaffFactory.create()
    client.force_login(staff)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    for name in REQUIRED:
        assert f"# TYPE {name}" in body, name
    by_token = Client().get("/metrics", HTTP_AUTHORIZATION=f"Token {token_for(staff)}")
    assert by_token.status_code == 200


def test_scrape_token(settings: Any) -> None:
    settings.METRICS_TOKEN = "scrape-secret"
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def metric_value(body: str, name: str) -> float:
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not found")


def test_stored_messages_are_counted(client: Client) -> None:
    staff = StaffFactory.create()
    client.force_login(staff)
    before = metric_value(client.get("/metrics").content.decode(), "travelsite_chat_messages_total")
    room, _ = services.public_room_create_or_join(user=staff, name="Counted")
    services.message_send(user=staff, room_id=room.pk, text="one")
    after = metric_value(client.get("/metrics").content.decode(), "travelsite_chat_messages_total")
    assert after == before + 1


def scraped(server: DaphneServer, token: str) -> str:
    """A live server's /metrics text, read with a staff token."""
    request = urllib.request.Request(
        f"{server.url}/metrics", headers={"Authorization": f"Token {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(response.read().decode())


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_open_sockets_are_counted_by_the_server(daphne_factory: Any) -> None:
    import time

    server: DaphneServer = daphne_factory()  # its own process: no other test's sockets
    token = token_for(StaffFactory.create())

    def open_sockets() -> float:
        return metric_value(scraped(server, token), "travelsite_ws_connections")

    def eventually(expected: float) -> float:
        deadline = time.monotonic() + 5
        while (value := open_sockets()) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return value

    assert open_sockets() == 0
    with open_socket(server.ws_url, token=token_for(UserFactory.create())) as ws:
        ping(ws)
        assert open_sockets() == 1
    assert eventually(0) == 0


def labelled_total(body: str, name: str) -> float:
    """The sum of a labelled counter's series (0 when it has none yet)."""
    return sum(float(line.split()[-1]) for line in body.splitlines() if line.startswith(name + "{"))


def timer_collections_while_a_socket_is_open(server: DaphneServer) -> tuple[float, float]:
    """The server's timer collections before a socket connects, and the most seen within 10 s
    of scrapes after (each scrape makes new objects for a young collection to look at)."""
    import time

    token = token_for(StaffFactory.create())

    def collections() -> float:
        return labelled_total(scraped(server, token), "travelsite_gc_timer_collections_total")

    before = collections()
    with open_socket(server.ws_url, token=token_for(UserFactory.create())) as ws:
        ping(ws)
        deadline = time.monotonic() + 10
        while (after := collections()) == before and time.monotonic() < deadline:
            time.sleep(0.05)
    return before, after


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_once_a_socket_connects_the_collector_runs_from_the_loops_timer(
    daphne_factory: Any,
) -> None:
    before, after = timer_collections_while_a_socket_is_open(daphne_factory())
    assert before == 0  # no socket yet: CPython's own thresholds
    assert after > 0


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_switched_off_the_loops_timer_never_collects(daphne_factory: Any) -> None:
    before, after = timer_collections_while_a_socket_is_open(daphne_factory(GC_BETWEEN_EVENTS="0"))
    assert before == after == 0
