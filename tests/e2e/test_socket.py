"""The /ws/ socket through a real daphne process, the test database and the Redis layer."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from presence.models import UserPresence
from tests.conftest import DaphneServer, session_cookie_for, token_for
from tests.e2e.wsclient import open_socket, ping, receive, receive_type, send
from tests.factories import UserFactory
from travelsite import realtime

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_session_cookie_signs_the_socket_in(daphne_server: DaphneServer) -> None:
    user = UserFactory.create()
    with open_socket(daphne_server.ws_url, cookie=session_cookie_for(user)) as ws:
        ping(ws)


def test_token_header_signs_the_socket_in(daphne_server: DaphneServer) -> None:
    user = UserFactory.create()
    with open_socket(daphne_server.ws_url, token=token_for(user)) as ws:
        ping(ws)


def test_authenticate_frame_signs_the_socket_in(daphne_server: DaphneServer) -> None:
    user = UserFactory.create(first_name="Ada", last_name="Lovelace")
    with open_socket(daphne_server.ws_url) as ws:
        send(ws, {"type": "authenticate", "token": token_for(user)})
        assert receive(ws) == {
            "type": "authenticated",
            "user": {"id": user.pk, "firstName": "Ada", "lastName": "Lovelace"},
        }
        ping(ws)


def test_sockets_signing_in_at_once_are_each_their_own_user_and_online(
    daphne_server: DaphneServer,
) -> None:
    """Sign-ins and presence writes that arrive together are batched by the server: a storm
    of handshakes (header tokens) and `authenticate` frames must not mix their users up."""
    users = UserFactory.create_batch(24)
    tokens = [token_for(user) for user in users]

    def sign_in(index: int) -> tuple[int, int]:
        by_header = index % 2 == 0
        ws = open_socket(daphne_server.ws_url, token=tokens[index] if by_header else None)
        with ws:
            # A header-signed socket confirms its user with the same token; the others sign in.
            send(ws, {"type": "authenticate", "token": tokens[index]})
            answer = receive_type(ws, "authenticated", timeout=10)
            ping(ws)
            return users[index].pk, answer["user"]["id"]

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        signed_in = list(pool.map(sign_in, range(len(users))))

    assert all(expected == got for expected, got in signed_in), signed_in
    stored = set(
        UserPresence.objects.filter(user__in=users, version__gt=0).values_list("user", flat=True)
    )
    assert stored == {user.pk for user in users}  # each came online, and was written


def test_bad_header_token_is_refused_at_the_handshake(daphne_server: DaphneServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_socket(daphne_server.ws_url, token="not-a-token")
    assert refused.value.response.status_code == 403


def test_bad_authenticate_token_closes_with_4401(daphne_server: DaphneServer) -> None:
    with open_socket(daphne_server.ws_url) as ws:
        send(ws, {"type": "authenticate", "token": "nope"})
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_anything_but_authenticate_first_closes_with_4401(daphne_server: DaphneServer) -> None:
    with open_socket(daphne_server.ws_url) as ws:
        send(ws, {"type": "ping"})
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_socket_not_signed_in_in_time_closes_with_4401(daphne_server: DaphneServer) -> None:
    # The session server runs with WS_AUTH_TIMEOUT_SECONDS=2 (10 by default).
    with open_socket(daphne_server.ws_url) as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        waited = time.monotonic() - started
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert 1.5 <= waited < 6


def test_foreign_origin_is_refused(daphne_server: DaphneServer) -> None:
    user = UserFactory.create()
    with pytest.raises(InvalidStatus) as refused:
        open_socket(
            daphne_server.ws_url, cookie=session_cookie_for(user), origin="http://evil.example"
        )
    assert refused.value.response.status_code == 403


def test_same_origin_is_accepted(daphne_server: DaphneServer) -> None:
    user = UserFactory.create()
    with open_socket(
        daphne_server.ws_url, cookie=session_cookie_for(user), origin=daphne_server.url
    ) as ws:
        ping(ws)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"no": "type"}', "bad_frame"),
        ('{"type": 7}', "bad_frame"),
        ('{"type": "launch_rockets"}', "unknown_type"),
        (json.dumps({"type": "ping", "pad": "x" * 70_000}), "too_large"),
        ("[" * 30_000 + "]" * 30_000, "bad_json"),
    ],
)
def test_bad_frames_get_an_error_and_the_socket_stays_open(
    daphne_server: DaphneServer, payload: str, code: str
) -> None:
    user = UserFactory.create()
    with open_socket(daphne_server.ws_url, token=token_for(user)) as ws:
        ws.send(payload)
        error = receive(ws)
        assert error["type"] == "error"
        assert error["code"] == code
        assert error["detail"]
        ping(ws)


def test_binary_frame_gets_an_error_and_the_socket_stays_open(
    daphne_server: DaphneServer,
) -> None:
    user = UserFactory.create()
    with open_socket(daphne_server.ws_url, token=token_for(user)) as ws:
        ws.send(b"\x00\x01binary")
        assert receive(ws)["code"] == "bad_frame"
        ping(ws)


def test_unknown_type_error_refers_to_the_frame(daphne_server: DaphneServer) -> None:
    user = UserFactory.create()
    with open_socket(daphne_server.ws_url, token=token_for(user)) as ws:
        send(ws, {"type": "nonsense"})
        assert receive(ws)["ref"] == "nonsense"
        send(ws, {"type": "nonsense", "clientId": "c-1"})
        assert receive(ws)["ref"] == "c-1"


def test_events_sent_from_another_process_reach_every_socket_of_the_user_in_order(
    daphne_server: DaphneServer,
) -> None:
    user, other = UserFactory.create(), UserFactory.create()
    with (
        open_socket(daphne_server.ws_url, token=token_for(user)) as tab1,
        open_socket(daphne_server.ws_url, cookie=session_cookie_for(user)) as tab2,
        open_socket(daphne_server.ws_url, token=token_for(other)) as bystander,
    ):
        for ws in (tab1, tab2, bystander):
            ping(ws)  # joined its user group before we send
        # This test process is not the daphne process: the events cross Redis, as one batch
        # (one layer message per group, each event still its own frame).
        mine, theirs = realtime.user_group(user.pk), realtime.user_group(other.pk)
        realtime.send_each(
            [
                ([mine], {"type": "hello", "n": 1}),
                ([mine, theirs], {"type": "hello", "n": 2}),
                ([mine], {"type": "hello", "n": 3}),
            ]
        )
        for ws in (tab1, tab2):
            assert [receive_type(ws, "hello")["n"] for _ in range(3)] == [1, 2, 3]
            ping(ws)  # and nothing more
        assert receive_type(bystander, "hello") == {"type": "hello", "n": 2}
        ping(bystander)  # the bystander got nothing else before its pong


def test_a_batch_is_one_layer_message_per_group_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    sent: list[tuple[str, list[int]]] = []

    async def record(sends: Any) -> None:
        sent.extend(
            (group, [json.loads(text)["n"] for text in realtime.event_texts(message)])
            for group, message in sends
        )

    monkeypatch.setattr(realtime, "asend_messages", record)
    batch = [(["a"], {"n": 1}), (["b", "a", "b"], {"n": 2}), (["a"], {"n": 3})]
    asyncio.run(realtime.asend_each(batch))

    # One publish per group, not per event: a store batch in one room is one message.
    assert sent == [("a", [1, 2, 3]), ("b", [2])]


def test_idle_socket_survives_over_30_seconds(daphne_server: DaphneServer) -> None:
    # channels-redis with redis-py 8 dropped layer reads idle for over 5 s; see pyproject.
    user = UserFactory.create()
    with open_socket(daphne_server.ws_url, token=token_for(user)) as ws:
        ping(ws)
        time.sleep(32)
        realtime.send([realtime.user_group(user.pk)], {"type": "still-here"})
        assert receive_type(ws, "still-here")["type"] == "still-here"
        ping(ws)


def test_the_outbox_keeps_sending_after_a_bad_event() -> None:
    import asyncio

    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        sent: list[str] = []
        real = realtime.asend_messages

        async def record(sends: Any) -> None:
            sent.extend(json.loads(message["text"])["type"] for _, message in sends)

        realtime.asend_messages = record
        try:
            realtime.bind_event_loop(loop)
            unencodable = {"type": "bad", "payload": object()}
            await asyncio.to_thread(realtime.send_each, [(["g"], unencodable)])
            await asyncio.to_thread(realtime.send_each, [(["g"], {"type": "good"})])
            for _ in range(100):
                if sent:
                    break
                await asyncio.sleep(0.01)
        finally:
            realtime.asend_messages = real
            realtime._loop = None
        return sent

    assert asyncio.run(scenario()) == ["good"]
