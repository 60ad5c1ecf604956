"""Chat over real daphne processes, the test database and the Redis channel layer."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from websockets.sync.client import ClientConnection

from chat import events, services
from chat.models import ChatMessage, ChatRoom
from tests.conftest import DaphneServer, api_client_for, token_for
from tests.e2e.wsclient import open_socket, ping, receive, receive_type, send
from tests.factories import StaffFactory, UserFactory
from travelsite import realtime

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lobby() -> ChatRoom:
    room, _ = services.public_room_create_or_join(user=StaffFactory.create(), name="Lobby")
    return room


def member(room: ChatRoom) -> User:
    user = UserFactory.create()
    services.public_room_create_or_join(user=user, name=room.name)
    return user


def joined(server: DaphneServer, user: User, room: ChatRoom) -> ClientConnection:
    ws = open_socket(server.ws_url, token=token_for(user))
    send(ws, {"type": "join_room", "roomId": room.pk})
    receive_type(ws, "room_joined")
    return ws


def client_id() -> str:
    return uuid.uuid4().hex


def chat_frames(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next `count` frames other than presence (a room-mate's coming online is broadcast
    a moment after their socket opens, so it may come between a send and its answers)."""
    frames: list[dict[str, Any]] = []
    while len(frames) < count:
        frame = receive(ws)
        if frame["type"] != "presence":
            frames.append(frame)
    return frames


def test_join_room_answers_the_latest_history(daphne_server: DaphneServer, lobby: ChatRoom) -> None:
    user = member(lobby)
    for n in range(55):
        services.message_send(user=user, room_id=lobby.pk, text=f"m{n}")
    with open_socket(daphne_server.ws_url, token=token_for(user)) as ws:
        send(ws, {"type": "join_room", "roomId": lobby.pk})
        answer = receive_type(ws, "room_joined")
    assert answer["room"]["id"] == lobby.pk
    assert answer["room"]["name"] == "Lobby"
    assert [m["message"] for m in answer["messages"]] == [f"m{n}" for n in range(5, 55)]
    assert answer["hasMore"] is True


def test_join_public_room_by_name(daphne_server: DaphneServer, lobby: ChatRoom) -> None:
    user = UserFactory.create()
    with open_socket(daphne_server.ws_url, token=token_for(user)) as ws:
        send(ws, {"type": "join_room", "name": "Lobby"})
        assert receive_type(ws, "room_joined")["room"]["id"] == lobby.pk


def test_send_message_is_stored_then_acked_and_broadcast_to_every_joined_socket(
    daphne_server: DaphneServer, lobby: ChatRoom
) -> None:
    alice, bob = member(lobby), member(lobby)
    with (
        joined(daphne_server, alice, lobby) as alice_tab1,
        joined(daphne_server, alice, lobby) as alice_tab2,
        joined(daphne_server, bob, lobby) as bob_ws,
    ):
        cid = client_id()
        send(
            alice_tab1,
            {"type": "send_message", "roomId": lobby.pk, "message": "Hi!", "clientId": cid},
        )
        frames = chat_frames(alice_tab1, 2)
        ack = next(f for f in frames if f["type"] == "ack")
        echo = next(f for f in frames if f["type"] == "message")
        stored = ChatMessage.objects.get(client_id=cid)
        assert ack["clientId"] == cid
        assert ack["message"]["id"] == stored.pk
        assert ack["message"]["message"] == "Hi!"
        assert echo["message"] == ack["message"]
        assert receive_type(alice_tab2, "message")["message"] == ack["message"]
        assert receive_type(bob_ws, "message")["message"] == ack["message"]


def test_repeated_client_id_is_acked_with_the_stored_message_and_not_rebroadcast(
    daphne_server: DaphneServer, lobby: ChatRoom
) -> None:
    alice, bob = member(lobby), member(lobby)
    with (
        joined(daphne_server, alice, lobby) as alice_ws,
        joined(daphne_server, bob, lobby) as bob_ws,
    ):
        cid = client_id()
        send(
            alice_ws,
            {"type": "send_message", "roomId": lobby.pk, "message": "once", "clientId": cid},
        )
        first_ack = receive_type(alice_ws, "ack")
        receive_type(bob_ws, "message")
        send(
            alice_ws,
            {"type": "send_message", "roomId": lobby.pk, "message": "twice", "clientId": cid},
        )
        second_ack = receive_type(alice_ws, "ack")
        assert second_ack["message"] == first_ack["message"]
        ping(bob_ws)  # nothing else arrived before the pong
        assert ChatMessage.objects.filter(client_id=cid).count() == 1


def test_a_message_sent_by_rest_reaches_the_sockets(
    daphne_server: DaphneServer, lobby: ChatRoom
) -> None:
    alice, bob = member(lobby), member(lobby)
    with joined(daphne_server, bob, lobby) as bob_ws:
        response = api_client_for(alice).post(
            "/api/chat/messages", {"roomId": lobby.pk, "message": "via REST"}, format="json"
        )
        assert receive_type(bob_ws, "message")["message"] == response.json()


def test_two_processes_deliver_in_order_once(
    daphne_factory: Callable[..., DaphneServer], lobby: ChatRoom
) -> None:
    first, second = daphne_factory(), daphne_factory()
    alice, bob, carol = member(lobby), member(lobby), member(lobby)
    with (
        joined(first, alice, lobby) as sender,
        joined(second, bob, lobby) as bob_ws,
        joined(second, carol, lobby) as carol_ws,
    ):
        sent = []
        for n in range(20):
            send(
                sender,
                {
                    "type": "send_message",
                    "roomId": lobby.pk,
                    "message": f"n{n}",
                    "clientId": client_id(),
                },
            )
            sent.append(receive_type(sender, "ack")["message"]["id"])
        for ws in (bob_ws, carol_ws):
            events = [receive_type(ws, "message") for _ in range(20)]
            assert [e["message"]["id"] for e in events] == sent
            # each event names the one before it, so a reader can tell it missed none
            assert [e["prevId"] for e in events[1:]] == sent[:-1]
            ping(ws)  # and nothing more


def test_sync_after_reconnect_returns_exactly_what_was_missed(
    daphne_server: DaphneServer, lobby: ChatRoom
) -> None:
    alice, bob = member(lobby), member(lobby)
    with joined(daphne_server, bob, lobby) as bob_ws:
        services.message_send(user=alice, room_id=lobby.pk, text="seen")
        last_seen = receive_type(bob_ws, "message")["message"]["id"]
    missed = [
        services.message_send(user=alice, room_id=lobby.pk, text=f"missed {n}")[0].pk
        for n in range(3)
    ]
    with joined(daphne_server, bob, lobby) as bob_ws:
        send(bob_ws, {"type": "sync", "roomId": lobby.pk, "afterId": last_seen})
        history = receive_type(bob_ws, "history")
    assert history["roomId"] == lobby.pk
    assert [m["id"] for m in history["messages"]] == missed
    assert history["hasMore"] is False


def test_mark_read_updates_every_socket_of_the_user_and_tells_the_room(
    daphne_server: DaphneServer, lobby: ChatRoom
) -> None:
    alice, bob = member(lobby), member(lobby)
    ids = [
        services.message_send(user=alice, room_id=lobby.pk, text=f"m{n}")[0].pk for n in range(3)
    ]
    with (
        joined(daphne_server, bob, lobby) as bob_room_tab,
        open_socket(daphne_server.ws_url, token=token_for(bob)) as bob_other_tab,
        joined(daphne_server, alice, lobby) as alice_ws,
    ):
        ping(bob_other_tab)
        send(bob_room_tab, {"type": "mark_read", "roomId": lobby.pk, "messageId": ids[1]})
        expected = {"type": "unread", "roomId": lobby.pk, "unreadCount": 1}
        assert receive_type(bob_room_tab, "unread") == expected
        assert receive_type(bob_other_tab, "unread") == expected
        read = receive_type(alice_ws, "read")
        assert read == {"type": "read", "roomId": lobby.pk, "userId": bob.pk, "messageId": ids[1]}


def test_unread_goes_to_participant_sockets_not_joined_to_the_room(
    daphne_server: DaphneServer, lobby: ChatRoom
) -> None:
    alice, bob = member(lobby), member(lobby)
    with (
        joined(daphne_server, bob, lobby) as bob_in_room,
        open_socket(daphne_server.ws_url, token=token_for(bob)) as bob_elsewhere,
    ):
        ping(bob_elsewhere)
        services.message_send(user=alice, room_id=lobby.pk, text="one")
        assert receive_type(bob_elsewhere, "unread") == {
            "type": "unread",
            "roomId": lobby.pk,
            "unreadCount": 1,
        }
        services.message_send(user=alice, room_id=lobby.pk, text="two")
        assert receive_type(bob_elsewhere, "unread")["unreadCount"] == 2
        receive_type(bob_in_room, "message")
        receive_type(bob_in_room, "message")
        ping(bob_in_room)  # the joined socket got messages, not unread counts


def test_unread_from_a_socket_send_reaches_not_joined_sockets_on_every_process(
    daphne_factory: Callable[..., DaphneServer], lobby: ChatRoom
) -> None:
    """Messages sent over a socket: the storing process announces the room to every process,
    and each tells its own sockets that are not showing the room (chat/unread_ws.py)."""
    first, second = daphne_factory(), daphne_factory()
    alice, bob = member(lobby), member(lobby)
    with (
        joined(first, alice, lobby) as sender,
        joined(first, bob, lobby) as bob_in_room,
        open_socket(second.ws_url, token=token_for(bob)) as bob_elsewhere,
        open_socket(first.ws_url, token=token_for(bob)) as bob_here_not_joined,
    ):
        ping(bob_elsewhere)
        ping(bob_here_not_joined)
        for text in ("one", "two"):
            send(
                sender,
                {"type": "send_message", "roomId": lobby.pk, "message": text, "clientId": text},
            )
            receive_type(sender, "ack")
        for ws in (bob_elsewhere, bob_here_not_joined):
            counts = [receive_type(ws, "unread")]
            while counts[-1]["unreadCount"] < 2:  # both messages may come in one window
                counts.append(receive_type(ws, "unread"))
            assert all(c["roomId"] == lobby.pk for c in counts)
        receive_type(bob_in_room, "message")
        receive_type(bob_in_room, "message")
        ping(bob_in_room)  # the joined socket got messages, not unread counts


def test_a_hidden_unread_message_leaves_the_counts_of_sockets_not_showing_the_room(
    daphne_server: DaphneServer, lobby: ChatRoom
) -> None:
    """The server advances the counts it sent (chat/unread_ws.py); a hide makes it count the
    room again, so the hidden message leaves the count now and stays out of later ones."""
    alice, bob = member(lobby), member(lobby)

    def send_and_count(
        sender: ClientConnection, watcher: ClientConnection, text: str
    ) -> tuple[int, int]:
        """Send `text`; its id and the next non-zero unread count `watcher` hears."""
        frame = {"type": "send_message", "roomId": lobby.pk, "message": text, "clientId": text}
        send(sender, frame)
        stored = receive_type(sender, "ack")["message"]["id"]
        count = receive_type(watcher, "unread")
        while count["roomId"] != lobby.pk or count["unreadCount"] == 0:
            count = receive_type(watcher, "unread")
        return int(stored), int(count["unreadCount"])

    with (
        joined(daphne_server, alice, lobby) as alice_ws,
        open_socket(daphne_server.ws_url, token=token_for(bob)) as bob_elsewhere,
    ):
        ping(bob_elsewhere)
        send_and_count(alice_ws, bob_elsewhere, "one")
        spam, count = send_and_count(alice_ws, bob_elsewhere, "spam")
        while count < 2:
            count = receive_type(bob_elsewhere, "unread")["unreadCount"]

        services.message_hide(actor=StaffFactory.create(), message_id=spam)
        assert receive_type(bob_elsewhere, "unread")["unreadCount"] == 1

        _, count = send_and_count(alice_ws, bob_elsewhere, "three")
        assert count == 2


def test_leave_room_stops_its_events(daphne_server: DaphneServer, lobby: ChatRoom) -> None:
    alice, bob = member(lobby), member(lobby)
    with joined(daphne_server, bob, lobby) as bob_ws:
        send(bob_ws, {"type": "leave_room", "roomId": lobby.pk})
        receive_type(bob_ws, "room_left")
        services.message_send(user=alice, room_id=lobby.pk, text="after leaving")
        frame = receive_type(bob_ws, "unread")  # as a socket not joined to the room
        assert frame["roomId"] == lobby.pk
        ping(bob_ws)


def test_private_room_events_never_reach_outsiders(daphne_server: DaphneServer) -> None:
    alice, bob, eve = UserFactory.create(), UserFactory.create(), UserFactory.create()
    direct, _ = services.direct_room_get_or_create(user=alice, other_user_id=bob.pk)
    with open_socket(daphne_server.ws_url, token=token_for(eve)) as eve_ws:
        send(eve_ws, {"type": "join_room", "roomId": direct.pk})
        assert receive_type(eve_ws, "error")["code"] == "not_found"
        services.message_send(user=alice, room_id=direct.pk, text="secret")
        send(eve_ws, {"type": "sync", "roomId": direct.pk, "afterId": 0})
        assert receive_type(eve_ws, "error")["code"] == "not_found"
        ping(eve_ws)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "join_room"}, "invalid"),
        ({"type": "join_room", "roomId": "1"}, "invalid"),
        ({"type": "join_room", "roomId": 99999999}, "not_found"),
        (
            {"type": "send_message", "roomId": 99999999, "message": "x", "clientId": "a"},
            "not_found",
        ),
        ({"type": "send_message", "roomId": None, "message": "x", "clientId": "b"}, "invalid"),
        ({"type": "send_message", "roomId": "ROOM", "message": "", "clientId": "c"}, "invalid"),
        ({"type": "send_message", "roomId": "ROOM", "message": "   ", "clientId": "d"}, "invalid"),
        (
            {"type": "send_message", "roomId": "ROOM", "message": "x" * 4001, "clientId": "e"},
            "invalid",
        ),
        ({"type": "send_message", "roomId": "ROOM", "message": 42, "clientId": "f"}, "invalid"),
        ({"type": "send_message", "roomId": "ROOM", "message": "x", "clientId": 7}, "invalid"),
        ({"type": "mark_read", "roomId": "ROOM", "messageId": 99999999}, "not_found"),
        ({"type": "mark_read", "roomId": "ROOM"}, "invalid"),
        ({"type": "sync", "roomId": "ROOM", "afterId": "x"}, "invalid"),
        ({"type": "leave_room", "roomId": -3}, "invalid"),
    ],
)
def test_bad_chat_frames_get_an_error_change_nothing_and_keep_the_socket(
    daphne_server: DaphneServer, lobby: ChatRoom, frame: dict[str, Any], code: str
) -> None:
    user = member(lobby)
    frame = {k: (lobby.pk if v == "ROOM" else v) for k, v in frame.items()}
    with open_socket(daphne_server.ws_url, token=token_for(user)) as ws:
        send(ws, frame)
        error = receive_type(ws, "error")
        assert error["code"] == code
        cid = frame.get("clientId")
        assert error["ref"] == (cid if isinstance(cid, str) else frame["type"])
        ping(ws)
    assert not ChatMessage.objects.exists()


def test_a_socket_hears_its_users_events_from_the_moment_it_opens(
    daphne_server: DaphneServer,
) -> None:
    """The socket is subscribed before its handshake ends: an unread count or an event to its
    user sent right after the client sees it open is not lost (pages load their counts then)."""
    alice, bob = UserFactory.create(), UserFactory.create()
    room, _ = services.direct_room_get_or_create(user=bob, other_user_id=alice.pk)
    for attempt in range(1, 6):
        services.message_send(user=bob, room_id=room.pk, text=f"hello {attempt}")
        with open_socket(daphne_server.ws_url, token=token_for(alice)) as ws:
            # at once, as a store would after its commit (no window in the test process)
            events.unread_counts_changed(room.pk)
            realtime.send([realtime.user_group(alice.pk)], {"type": "custom", "n": attempt})
            heard: dict[str, dict[str, Any]] = {}
            while len(heard) < 2:
                frame = receive(ws)
                if frame["type"] in ("unread", "custom"):
                    heard[frame["type"]] = frame
            assert heard["unread"] == {"type": "unread", "roomId": room.pk, "unreadCount": attempt}
            assert heard["custom"] == {"type": "custom", "n": attempt}
