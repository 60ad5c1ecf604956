"""Redis stops and comes back while messages flow: nothing acknowledged is lost."""

import time
from typing import Any

import pytest

from chat import services
from chat.models import ChatMessage
from tests.conftest import token_for
from tests.factories import StaffFactory, UserFactory
from tests.faults.client import ResilientChatClient
from tests.faults.conftest import RedisServer

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_redis_restart_while_messages_flow(daphne_factory: Any, private_redis: RedisServer) -> None:
    server = daphne_factory(REDIS_URL=private_redis.url)
    staff, alice, bob = StaffFactory.create(), UserFactory.create(), UserFactory.create()
    room, _ = services.public_room_create_or_join(user=staff, name="Outage")
    for user in (alice, bob):
        services.public_room_create_or_join(user=user, name="Outage")
    sender = ResilientChatClient(server.ws_url, token_for(alice), room.pk)
    reader = ResilientChatClient(server.ws_url, token_for(bob), room.pk)
    assert sender.connect(time.monotonic() + 10)
    assert reader.connect(time.monotonic() + 10)

    outcomes = [sender.send_message(f"before {n}") for n in range(5)]
    assert outcomes == ["acked"] * 5

    private_redis.kill()
    during = []
    outage_end = time.monotonic() + 3
    while time.monotonic() < outage_end:
        if sender.ws is None:
            sender.connect(time.monotonic() + 0.5)
        during.append(sender.send_message("during", timeout=2))
        time.sleep(0.1)
    # while Redis is down, a send is refused with a retryable error or its socket drops
    assert set(during) <= {"acked", "refused:unavailable", "disconnected"}
    assert set(during) - {"acked"}, "the outage did not show: was Redis really down?"

    private_redis.start()
    # service resumes by itself: both clients reconnect and can send again within seconds
    restarted = time.monotonic()
    assert sender.healthy(restarted + 20), "the sender could not send after Redis came back"
    assert reader.healthy(restarted + 20), "the reader could not send after Redis came back"

    # and the reader hears new messages live again
    assert sender.send_message("live again") == "acked"
    assert reader.wait_for(sender.acked[list(sender.acked)[-1]])

    # nothing acknowledged is missing from history
    stored = set(ChatMessage.objects.filter(room=room).values_list("client_id", flat=True))
    assert set(sender.acked) <= stored
    assert len(sender.acked) >= 7
    sender.close()
    reader.close()
