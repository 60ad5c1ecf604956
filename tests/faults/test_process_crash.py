"""One of two daphne processes is killed: its clients reconnect to the other and catch up."""

import signal
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from chat import services
from tests.conftest import token_for
from tests.e2e.wsclient import open_socket, ping, receive_type, send
from tests.factories import StaffFactory, UserFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_sigkill_one_process_clients_move_to_the_other_and_catch_up(daphne_factory: Any) -> None:
    doomed, survivor = daphne_factory(), daphne_factory()
    staff, alice, bob = StaffFactory.create(), UserFactory.create(), UserFactory.create()
    room, _ = services.public_room_create_or_join(user=staff, name="Crash")
    for user in (alice, bob):
        services.public_room_create_or_join(user=user, name="Crash")

    alice_ws = open_socket(doomed.ws_url, token=token_for(alice))
    send(alice_ws, {"type": "join_room", "roomId": room.pk})
    last_seen = max([m["id"] for m in receive_type(alice_ws, "room_joined")["messages"]] or [0])
    with open_socket(survivor.ws_url, token=token_for(bob)) as bob_ws:
        send(bob_ws, {"type": "join_room", "roomId": room.pk})
        receive_type(bob_ws, "room_joined")
        send(bob_ws, {"type": "send_message", "roomId": room.pk, "message": "hi", "clientId": "c0"})
        receive_type(bob_ws, "ack")
        last_seen = receive_type(alice_ws, "message")["message"]["id"]

        doomed.stop(signal.SIGKILL)
        with pytest.raises((ConnectionClosed, OSError, TimeoutError)):
            alice_ws.recv(timeout=5)

        # while alice is away, bob keeps talking on the surviving process
        missed = []
        for n in range(3):
            send(
                bob_ws,
                {
                    "type": "send_message",
                    "roomId": room.pk,
                    "message": f"m{n}",
                    "clientId": f"c{n + 1}",
                },
            )
            missed.append(receive_type(bob_ws, "ack")["message"]["id"])

        # alice's client reconnects to the other process and asks for what it missed
        started = time.monotonic()
        with open_socket(survivor.ws_url, token=token_for(alice)) as alice_again:
            send(alice_again, {"type": "join_room", "roomId": room.pk})
            receive_type(alice_again, "room_joined")
            send(alice_again, {"type": "sync", "roomId": room.pk, "afterId": last_seen})
            history = receive_type(alice_again, "history")
            assert [m["id"] for m in history["messages"]] == missed
            assert history["hasMore"] is False
            # and hears new messages live
            send(
                bob_ws,
                {"type": "send_message", "roomId": room.pk, "message": "live", "clientId": "c9"},
            )
            live = receive_type(bob_ws, "ack")["message"]["id"]
            assert receive_type(alice_again, "message")["message"]["id"] == live
            ping(alice_again)
        assert time.monotonic() - started < 10
