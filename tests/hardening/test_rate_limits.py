"""Rate limits: shared by every process through Redis, 429 over REST, error frames over WS."""

import json
import time
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from websockets.exceptions import ConnectionClosed

from chat import services
from chat.models import ChatMessage
from tests.conftest import DaphneServer, api_client_for, token_for
from tests.e2e.wsclient import open_socket, ping, receive_type, send
from tests.factories import StaffFactory, UserFactory
from travelsite import ratelimit

pytestmark = [pytest.mark.real_rate_limits]


@pytest.fixture
def tight(settings: Any) -> dict[str, tuple[int, float]]:
    limits = dict(settings.RATE_LIMITS)
    limits["demo"] = (3, 2.0)
    settings.RATE_LIMITS = limits
    return limits


def unique_subject() -> str:
    return f"test:{time.monotonic_ns()}"


@pytest.mark.services
def test_bucket_allows_the_burst_then_limits_with_a_retry_time(tight: Any) -> None:
    subject = unique_subject()
    for _ in range(3):
        ratelimit.check("demo", subject)
    with pytest.raises(ratelimit.RateLimited) as limited:
        ratelimit.check("demo", subject)
    assert 0 < limited.value.retry_after <= 0.6
    time.sleep(limited.value.retry_after + 0.05)
    ratelimit.check("demo", subject)  # refilled


@pytest.mark.services
def test_bucket_is_shared_between_sync_and_async_callers(tight: Any) -> None:
    from asgiref.sync import async_to_sync

    subject = unique_subject()
    ratelimit.check("demo", subject)
    async_to_sync(ratelimit.acheck)("demo", subject)
    ratelimit.check("demo", subject)
    with pytest.raises(ratelimit.RateLimited):
        async_to_sync(ratelimit.acheck)("demo", subject)


@pytest.fixture
def slow(settings: Any) -> None:
    """A bucket of 3 that refills one token in 10 s: nothing refills between two calls."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "slow": (3, 0.1)}


@pytest.mark.services
def test_a_batch_takes_a_token_per_subject_in_order_in_one_call(slow: None) -> None:
    from asgiref.sync import async_to_sync

    a, b = unique_subject(), unique_subject() + "b"
    verdicts = ratelimit.check_each("slow", [a, b, a, a, a])
    assert [v is None for v in verdicts] == [True, True, True, True, False]
    assert isinstance(verdicts[4], ratelimit.RateLimited)
    assert 9 < verdicts[4].retry_after <= 10
    # The async path shares the buckets: b has two tokens left, a none.
    verdicts = async_to_sync(ratelimit.acheck_each)("slow", [b, a, b, b])
    assert [v is None for v in verdicts] == [True, False, True, False]


@pytest.mark.services
def test_buckets_work_after_redis_forgot_the_script(slow: None) -> None:
    from asgiref.sync import async_to_sync

    subject = unique_subject()
    ratelimit.check("slow", subject)  # the script is loaded and its SHA known
    ratelimit._sync_redis().script_flush()  # e.g. Redis restarted
    ratelimit.check("slow", subject)
    ratelimit._sync_redis().script_flush()
    async_to_sync(ratelimit.acheck)("slow", subject)
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.check("slow", subject)


def test_in_memory_bucket_without_redis(tight: Any, settings: Any) -> None:
    settings.REDIS_URL = None
    subject = unique_subject()
    for _ in range(3):
        ratelimit.check("demo", subject)
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.check("demo", subject)


def test_default_message_limit_allows_a_burst_of_20_and_5_a_second() -> None:
    burst, per_second = settings.RATE_LIMITS["messages"]
    assert burst >= 20
    assert per_second >= 5


@pytest.mark.services
@pytest.mark.django_db
def test_rest_messages_over_the_limit_are_429_with_retry_after(settings: Any) -> None:
    # A bucket that refills one token in 10 s: on a slow host the default (6 a second) refilled
    # between the posts, and the last one was stored.
    # Users are rate-limited by id, and ids repeat between the workers' test databases (and
    # runs) while Redis is shared: this user's id is one no other test has.
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "messages": (8, 0.1)}
    staff = StaffFactory.create()
    user = UserFactory.create(id=2_000_000_000 + time.monotonic_ns() % 100_000_000)
    room, _ = services.public_room_create_or_join(user=staff, name="Busy")
    client = api_client_for(user)
    burst, _ = settings.RATE_LIMITS["messages"]
    statuses = [
        client.post(
            "/api/chat/messages", {"roomId": room.pk, "message": f"m{n}"}, format="json"
        ).status_code
        for n in range(burst + 5)
    ]
    assert statuses[:burst] == [201] * burst
    assert 429 in statuses[burst:]
    limited = client.post("/api/chat/messages", {"roomId": room.pk, "message": "x"}, format="json")
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    # what was refused was not stored
    assert ChatMessage.objects.filter(sender=user).count() == statuses.count(201)


@pytest.mark.services
@pytest.mark.django_db
def test_sign_in_is_limited_per_address(api: Any) -> None:
    burst, _ = settings.RATE_LIMITS["sign_in"]
    address = f"10.9.{time.monotonic_ns() % 250}.{time.monotonic_ns() % 250}"
    answers = [
        api.post(
            "/api/auth/token",
            {"username": "x", "password": "y"},
            format="json",
            REMOTE_ADDR=address,
        ).status_code
        for _ in range(burst + 3)
    ]
    # the burst is answered (bad credentials), then the address is held back
    assert answers[:burst] == [400] * burst
    assert 429 in answers[burst:]


@pytest.mark.services
@pytest.mark.django_db
def test_login_form_is_limited_per_address(client: Any) -> None:
    burst, _ = settings.RATE_LIMITS["sign_in"]
    address = f"10.8.{time.monotonic_ns() % 250}.{time.monotonic_ns() % 250}"
    answers = [
        client.post(
            "/accounts/login/", {"username": "x", "password": "y"}, REMOTE_ADDR=address
        ).status_code
        for _ in range(burst + 3)
    ]
    assert answers[:burst] == [200] * burst  # the form again, with its error
    assert 429 in answers[burst:]


@pytest.mark.services
@pytest.mark.django_db
def test_rest_writes_are_limited_per_user(settings: Any) -> None:
    limits = dict(settings.RATE_LIMITS)
    limits["rest_writes"] = (2, 0.5)
    settings.RATE_LIMITS = limits
    user = UserFactory.create()
    client = api_client_for(user)
    answers = [
        client.patch("/api/notifications", {"all": True}, format="json").status_code
        for _ in range(3)
    ]
    assert answers == [200, 200, 429]
    assert client.get("/api/notifications").status_code == 200  # reads are not writes


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_message_limit_is_shared_by_rest_and_sockets_across_processes(
    daphne_factory: Any, settings: Any
) -> None:
    # A slow refill (one message per 5 s) so the bucket cannot refill during the test.
    server: DaphneServer = daphne_factory(real_rate_limits=True, RATE_LIMIT_MESSAGES="5/0.2")
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "messages": (5, 0.2)}
    staff, user = StaffFactory.create(), UserFactory.create()
    room, _ = services.public_room_create_or_join(user=staff, name="Shared")
    services.public_room_create_or_join(user=user, name="Shared")
    burst = 5
    client = api_client_for(user)
    for n in range(burst):  # the burst, spent over REST in this process
        assert (
            client.post(
                "/api/chat/messages", {"roomId": room.pk, "message": f"m{n}"}, format="json"
            ).status_code
            == 201
        )
    with open_socket(server.ws_url, token=token_for(user)) as ws:
        send(
            ws, {"type": "send_message", "roomId": room.pk, "message": "one more", "clientId": "x1"}
        )
        error = receive_type(ws, "error")
        assert error["code"] == "rate_limited"
        assert error["ref"] == "x1"
        assert error["retryAfter"] > 0
        ping(ws)
    assert not ChatMessage.objects.filter(client_id="x1").exists()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_frame_flood_is_refused_then_the_socket_is_closed(daphne_factory: Any) -> None:
    server: DaphneServer = daphne_factory(
        real_rate_limits=True, RATE_LIMIT_WS_FRAMES="20/10", WS_FLOOD_CLOSE_AFTER="50"
    )
    user: User = UserFactory.create()
    with open_socket(server.ws_url, token=token_for(user)) as ws:
        for _ in range(25):
            send(ws, {"type": "ping"})
        answers = [receive_type_any(ws) for _ in range(25)]
        assert answers.count("pong") >= 20
        assert "error:rate_limited" in answers
        with pytest.raises(ConnectionClosed) as closed:
            flood_until_closed(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4008


def receive_type_any(ws: Any) -> str:
    frame = json.loads(ws.recv(timeout=5))
    return str(frame["type"]) if frame["type"] != "error" else f"error:{frame['code']}"


def flood_until_closed(ws: Any) -> None:
    for _ in range(500):
        send(ws, {"type": "ping"})
    while True:
        ws.recv(timeout=5)
