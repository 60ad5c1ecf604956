"""Presence and typing through real daphne processes, the test database and Redis.

Timing windows are generous where the contract allows: "offline within 1 s" is asserted as
under 1.5 s measured on the client; a crashed process is simulated with SIGKILL and small
expiry settings (the defaults meeting the 60 s bound is checked in test_state.py).
"""

import signal
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from websockets.sync.client import ClientConnection

from tests.conftest import DaphneServer, api_client_for, token_for
from tests.e2e.wsclient import open_socket, ping, receive, receive_type, send
from tests.factories import StaffFactory, UserFactory
from tests.presence.conftest import shared_room

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("presence_redis_clean"),
]

#: Small expiry settings for processes this test kills.
FAST_EXPIRY = {
    "PRESENCE_SOCKET_TTL_SECONDS": "3",
    "PRESENCE_HEARTBEAT_SECONDS": "1",
    "PRESENCE_SWEEP_INTERVAL_SECONDS": "1",
}


def connect(server: DaphneServer, user: User) -> ClientConnection:
    """A signed-in socket whose connect hooks have run (the ping answers after them)."""
    ws = open_socket(server.ws_url, token=token_for(user))
    ping(ws)
    return ws


def frames_for(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Every frame arriving within `seconds`."""
    frames = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(receive(ws, timeout=left))
        except TimeoutError:
            break
    return frames


def next_frame(
    ws: ClientConnection, match: Callable[[dict[str, Any]], bool], timeout: float = 5
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = receive(ws, timeout=max(deadline - time.monotonic(), 0.01))
        if match(frame):
            return frame


def presence_of(ws: ClientConnection, user: User, timeout: float = 5) -> dict[str, Any]:
    return next_frame(
        ws, lambda f: f["type"] == "presence" and f["userId"] == user.pk, timeout=timeout
    )


def presences(frames: list[dict[str, Any]], user: User) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == "presence" and f["userId"] == user.pk]


def typing_in(ws: ClientConnection, room_id: int, timeout: float = 5) -> dict[str, Any]:
    return next_frame(ws, lambda f: f["type"] == "typing" and f["roomId"] == room_id, timeout)


def typist_ids(event: dict[str, Any]) -> set[int]:
    return {u["id"] for u in event["users"]}


def join(ws: ClientConnection, room_id: int) -> dict[str, Any]:
    send(ws, {"type": "join_room", "roomId": room_id})
    return receive_type(ws, "room_joined")


# --- Presence: tabs and processes ----------------------------------------------------------------


def test_closing_one_of_two_tabs_keeps_the_user_online_and_the_last_one_ends_it(
    daphne_server: DaphneServer,
) -> None:
    observer, traveller = UserFactory.create_batch(2)
    shared_room(observer, traveller)
    with connect(daphne_server, observer) as obs:
        # given: the traveller has two tabs open
        tab_1 = connect(daphne_server, traveller)
        assert presence_of(obs, traveller)["isOnline"] is True
        tab_2 = connect(daphne_server, traveller)

        # when: one closes
        tab_1.close()

        # then: no presence change (not even a second "online")
        assert presences(frames_for(obs, 1.5), traveller) == []
        body = api_client_for(observer).get(f"/api/users/presence/{traveller.pk}").json()
        assert body["isOnline"] is True

        # when: the last closes
        closed_at = time.monotonic()
        tab_2.close()
        offline = presence_of(obs, traveller, timeout=5)
        took = time.monotonic() - closed_at

    assert offline["isOnline"] is False
    assert took < 1.5
    last_seen = datetime.fromisoformat(offline["lastSeenAt"])
    assert last_seen.tzinfo is not None
    body = api_client_for(observer).get(f"/api/users/presence/{traveller.pk}").json()
    assert body["isOnline"] is False
    assert datetime.fromisoformat(body["lastSeenAt"]) == last_seen


def test_a_killed_process_leaves_the_user_online_via_the_other_then_offline(
    daphne_server: DaphneServer, daphne_factory: Callable[..., DaphneServer]
) -> None:
    observer, traveller = UserFactory.create_batch(2)
    shared_room(observer, traveller)
    first = daphne_factory(**FAST_EXPIRY)
    second = daphne_factory(**FAST_EXPIRY)
    with connect(daphne_server, observer) as obs:
        # given: the traveller is connected to two processes
        on_first = connect(first, traveller)
        on_second = connect(second, traveller)
        assert presence_of(obs, traveller)["isOnline"] is True

        # when: one process dies without closing its socket
        first.stop(signal.SIGKILL)

        # then: past that socket's expiry and a sweep, the traveller is still online
        assert presences(frames_for(obs, 6), traveller) == []
        body = api_client_for(observer).get(f"/api/users/presence/{traveller.pk}").json()
        assert body["isOnline"] is True

        # when: the only process left holding the traveller dies too
        killed_at = time.monotonic()
        second.stop(signal.SIGKILL)

        # then: the observer, on a surviving process, sees them go offline
        offline = presence_of(obs, traveller, timeout=60)
        took = time.monotonic() - killed_at

    on_first.close()
    on_second.close()
    assert offline["isOnline"] is False and offline["lastSeenAt"] is not None
    assert took < 60
    # 3 s expiry + the surviving process's 5 s sweep interval, with room to spare
    assert took < 15


# --- Presence: who hears of it -------------------------------------------------------------------


def test_presence_of_a_user_sharing_no_room_never_arrives_but_reaches_staff(
    daphne_server: DaphneServer,
) -> None:
    observer, stranger, someone = UserFactory.create_batch(3)
    shared_room(stranger, someone)
    staff = StaffFactory.create()
    with connect(daphne_server, observer) as obs, connect(daphne_server, staff) as staff_ws:
        with connect(daphne_server, stranger):
            assert presence_of(staff_ws, stranger)["isOnline"] is True
        assert presence_of(staff_ws, stranger)["isOnline"] is False
        assert presences(frames_for(obs, 0.5), stranger) == []

    response = api_client_for(observer).get(f"/api/users/presence/{stranger.pk}")
    assert response.status_code == 404


def test_room_mates_coming_online_together_are_each_heard_once_by_mates_and_staff(
    daphne_server: DaphneServer,
) -> None:
    """Several changes in one broadcast (each encoded once, chat/presence_ws.py): a room-mate
    already online and a staff member hear each newcomer come online, once, in its own frame."""
    watcher, *newcomers = UserFactory.create_batch(4)
    shared_room(watcher, *newcomers)
    staff = StaffFactory.create()
    with connect(daphne_server, watcher) as watching, connect(daphne_server, staff) as staff_ws:
        sockets = [open_socket(daphne_server.ws_url, token=token_for(u)) for u in newcomers]
        try:
            for ws in sockets:
                ping(ws)
            heard = frames_for(watching, 1.5)
            staff_heard = frames_for(staff_ws, 1.5)
        finally:
            for ws in sockets:
                ws.close()

    for user in newcomers:
        expected = [{"type": "presence", "userId": user.pk, "isOnline": True, "lastSeenAt": None}]
        assert presences(heard, user) == expected
        assert presences(staff_heard, user) == expected


def test_joining_a_room_tells_its_members_presence(daphne_server: DaphneServer) -> None:
    viewer, here, away = UserFactory.create_batch(3)
    room = shared_room(viewer, here, away)
    with connect(daphne_server, here), connect(daphne_server, viewer) as ws:
        joined = join(ws, room.pk)

    by_id = {p["userId"]: p for p in joined["presence"]}
    assert set(by_id) == {here.pk, away.pk}
    assert by_id[here.pk]["isOnline"] is True
    assert by_id[away.pk] == {
        "userId": away.pk,
        "isOnline": False,
        "lastSeenAt": None,
        "user": {"firstName": away.first_name, "lastName": away.last_name},
    }


# --- Typing --------------------------------------------------------------------------------------


@pytest.fixture
def typing_room(daphne_server: DaphneServer) -> Any:
    """Alice, Bob and an observer, each with a socket joined to their group room."""
    alice = UserFactory.create(first_name="Alice", last_name="Smith")
    bob = UserFactory.create(first_name="Bob", last_name="Jones")
    observer = UserFactory.create()
    room = shared_room(alice, bob, observer)
    sockets = {
        name: connect(daphne_server, user)
        for name, user in [("alice", alice), ("bob", bob), ("observer", observer)]
    }
    for ws in sockets.values():
        join(ws, room.pk)
    yield room, alice, bob, sockets
    for ws in sockets.values():
        ws.close()


def test_one_and_two_typists_are_listed_and_stop_drops_at_once(typing_room: Any) -> None:
    room, alice, bob, ws = typing_room

    send(ws["alice"], {"type": "typing_start", "roomId": room.pk})
    one = typing_in(ws["observer"], room.pk)
    send(ws["bob"], {"type": "typing_start", "roomId": room.pk})
    two = typing_in(ws["observer"], room.pk)
    stopped_at = time.monotonic()
    send(ws["alice"], {"type": "typing_stop", "roomId": room.pk})
    after_stop = typing_in(ws["observer"], room.pk)
    took = time.monotonic() - stopped_at

    assert one == {
        "type": "typing",
        "roomId": room.pk,
        "users": [{"id": alice.pk, "firstName": "Alice", "lastName": "Smith"}],
    }
    assert typist_ids(two) == {alice.pk, bob.pk}
    assert typist_ids(after_stop) == {bob.pk}
    assert took < 1


def test_a_typist_drops_out_two_seconds_after_their_last_start(typing_room: Any) -> None:
    room, alice, _, ws = typing_room

    send(ws["alice"], {"type": "typing_start", "roomId": room.pk})
    assert typist_ids(typing_in(ws["observer"], room.pk)) == {alice.pk}
    time.sleep(1)
    last_start = time.monotonic()
    send(ws["alice"], {"type": "typing_start", "roomId": room.pk})  # within the window: no event
    dropped = typing_in(ws["observer"], room.pk, timeout=5)
    after = time.monotonic() - last_start

    assert dropped["users"] == []
    assert 1.5 <= after <= 3


def test_a_burst_of_typing_starts_is_not_rebroadcast(typing_room: Any) -> None:
    room, alice, _, ws = typing_room

    for _ in range(50):
        send(ws["alice"], {"type": "typing_start", "roomId": room.pk})
        time.sleep(0.02)
    events = [f for f in frames_for(ws["observer"], 1.2) if f["type"] == "typing"]

    assert 1 <= len(events) <= 3
    assert typist_ids(events[0]) == {alice.pk}


def test_a_typist_drops_out_on_disconnect(typing_room: Any) -> None:
    room, alice, _, ws = typing_room
    send(ws["alice"], {"type": "typing_start", "roomId": room.pk})
    assert typist_ids(typing_in(ws["observer"], room.pk)) == {alice.pk}

    closed_at = time.monotonic()
    ws["alice"].close()
    dropped = typing_in(ws["observer"], room.pk)

    assert dropped["users"] == []
    assert time.monotonic() - closed_at < 1


def test_a_typist_drops_out_on_sending_a_message(typing_room: Any) -> None:
    room, alice, _, ws = typing_room
    send(ws["alice"], {"type": "typing_start", "roomId": room.pk})
    assert typist_ids(typing_in(ws["observer"], room.pk)) == {alice.pk}

    sent_at = time.monotonic()
    send(
        ws["alice"], {"type": "send_message", "roomId": room.pk, "message": "hi", "clientId": "c1"}
    )
    dropped = typing_in(ws["observer"], room.pk, timeout=1.5)

    assert dropped["users"] == []
    assert time.monotonic() - sent_at < 1


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "typing_start", "roomId": "ROOM"}, "not_found"),  # a room the user is not in
        ({"type": "typing_start", "roomId": 2**31}, "not_found"),
        ({"type": "typing_stop", "roomId": 2**31}, "not_found"),
        ({"type": "typing_start"}, "invalid"),
        ({"type": "typing_start", "roomId": "7"}, "invalid"),
        ({"type": "typing_start", "roomId": True}, "invalid"),
        ({"type": "typing_start", "roomId": -1}, "invalid"),
        ({"type": "typing_stop", "roomId": None}, "invalid"),
    ],
)
def test_bad_typing_frames_get_an_error_and_send_nothing(
    daphne_server: DaphneServer, typing_room: Any, frame: dict[str, Any], code: str
) -> None:
    room, *_, ws = typing_room
    outsider = UserFactory.create()
    if frame.get("roomId") == "ROOM":
        frame = {**frame, "roomId": room.pk}

    with connect(daphne_server, outsider) as out:
        send(out, frame)
        error = receive_type(out, "error")
        ping(out)

    assert error["code"] == code and error["ref"] == frame["type"] and error["detail"]
    assert [f for f in frames_for(ws["observer"], 0.5) if f["type"] == "typing"] == []
