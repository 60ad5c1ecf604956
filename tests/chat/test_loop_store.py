"""Sends stored by the event loop (chat.store, sockets on PostgreSQL) are answered, stored and
announced exactly as by `services.messages_send` on a thread: every test runs both."""

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User

from chat import services, store
from chat.models import ChatMessage, ChatRoom, ChatRoomParticipant
from notifications.models import Notification
from tests.chat.helpers import fresh_bucket, lobby
from tests.factories import StaffFactory, UserFactory
from travelsite import loop_db, realtime
from travelsite.ratelimit import RateLimited

# The loop's connection sees only what was committed: no test transaction around these tests.
pytestmark = pytest.mark.django_db(transaction=True)

Send = services.SendRequest
SendMany = Callable[[Sequence[services.SendRequest]], list[services.SendResult]]


async def _on_the_loop(requests: Sequence[services.SendRequest]) -> list[services.SendResult]:
    try:
        return await store.messages_send(requests)
    finally:
        await store.close_connections()


@pytest.fixture(params=["thread", pytest.param("loop", marks=pytest.mark.services)])
def send_many(request: pytest.FixtureRequest) -> SendMany:
    if request.param == "thread":
        return services.messages_send
    return async_to_sync(_on_the_loop)


@pytest.fixture
def announced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, Any]]]:
    sent: list[tuple[list[str], dict[str, Any]]] = []
    monkeypatch.setattr(
        realtime, "send_each", lambda batch, **meta: sent.extend((list(g), e) for g, e in batch)
    )
    return sent


def test_a_batch_is_stored_in_order_and_announced(
    send_many: SendMany, announced: list[tuple[list[str], dict[str, Any]]]
) -> None:
    room, other_room = lobby(), lobby("Other")
    before, _ = services.message_send(user=StaffFactory.create(), room_id=room.pk, text="before")
    announced.clear()
    # As the socket holds it: no profile loaded yet (the loop loads it before shaping).
    user = User.objects.get(pk=UserFactory.create().pk)

    results = send_many(
        [
            Send(user, room.pk, "one", "c1", rate_limit=None),
            Send(user, other_room.pk, "two", "c2", rate_limit=None),
            Send(user, room.pk, "three", "c3"),
        ]
    )

    assert [(m.message, created) for m, created in results] == [  # type: ignore[misc]
        ("one", True),
        ("two", True),
        ("three", True),
    ]
    one, two, three = (m for m, _ in results)  # type: ignore[misc]
    assert one.pk < two.pk < three.pk
    assert one.created_at.tzinfo is not None
    room.refresh_from_db()
    other_room.refresh_from_db()
    assert (room.last_message_id, other_room.last_message_id) == (three.pk, two.pk)
    # The sender joined both public rooms, with what was said before not unread.
    markers = dict(
        ChatRoomParticipant.objects.filter(user=user).values_list("room_id", "last_read_message_id")
    )
    assert markers == {room.pk: three.pk, other_room.pk: two.pk}
    messages = [(groups, e["message"]["id"], e["prevId"]) for groups, e in announced]
    assert messages == [
        ([realtime.room_group(room.pk)], one.pk, before.pk),
        ([realtime.room_group(other_room.pk)], two.pk, None),
        ([realtime.room_group(room.pk)], three.pk, one.pk),
    ]
    assert announced[0][1]["message"]["user"]["id"] == user.pk


def test_refused_sends_do_not_stop_the_others(send_many: SendMany, user: User) -> None:
    room = lobby()
    closed = lobby("Closed")
    ChatRoom.objects.filter(pk=closed.pk).update(is_active=False)
    agent = StaffFactory.create()  # staff still see a closed room: told it is closed
    direct, _ = services.direct_room_get_or_create(
        user=UserFactory.create(), other_user_id=UserFactory.create().pk
    )
    limited = RateLimited("messages", 3.0)

    results = send_many(
        [
            Send(user, room.pk, "", "empty"),
            Send(user, 10**9, "nowhere", "missing"),
            Send(user, direct.pk, "not mine", "direct"),
            Send(agent, closed.pk, "closed", "closed"),
            Send(user, room.pk, "too fast", "fast", rate_limit=limited),
            Send(user, room.pk, "fine", "ok"),
        ]
    )

    assert isinstance(results[0], services.Invalid)
    assert isinstance(results[1], services.NotFound)
    assert isinstance(results[2], services.NotFound)  # not visible: as if it did not exist
    assert isinstance(results[3], services.Forbidden)
    assert results[4] is limited
    message, created = results[5]  # type: ignore[misc]
    assert (message.message, created) == ("fine", True)
    assert list(ChatMessage.objects.values_list("client_id", flat=True)) == ["ok"]


def test_a_client_id_stored_before_is_answered_with_that_message(
    send_many: SendMany, user: User, announced: list[tuple[list[str], dict[str, Any]]]
) -> None:
    room = lobby()
    first, _ = services.message_send(user=user, room_id=room.pk, text="hi", client_id="a")
    announced.clear()

    results = send_many(
        [
            Send(user, room.pk, "hi", "a", rate_limit=None),  # a retry after a lost ack
            Send(user, room.pk, "new", "b", rate_limit=None),
            Send(user, room.pk, "new", "b", rate_limit=None),  # the same send twice in a batch
        ]
    )

    assert results[0] == (first, False)
    new, created = results[1]  # type: ignore[misc]
    assert created is True and results[2] == (new, False)
    assert ChatMessage.objects.filter(sender=user).count() == 2
    assert [e["message"]["id"] for _, e in announced] == [new.pk]  # the retry is not announced


def test_a_retry_is_acknowledged_even_when_now_refused(send_many: SendMany, user: User) -> None:
    room = lobby()
    stored, _ = services.message_send(user=user, room_id=room.pk, text="hi", client_id="a")
    ChatRoom.objects.filter(pk=room.pk).update(is_active=False)

    results = send_many(
        [
            Send(user, room.pk, "hi", "a", rate_limit=None),
            Send(user, room.pk, "hi", "b", rate_limit=RateLimited("messages", 1.0)),
        ]
    )

    assert results[0] == (stored, False)
    assert isinstance(results[1], RateLimited)


def test_unchecked_rate_limits_are_taken_once(
    send_many: SendMany, user: User, settings: Any
) -> None:
    room = lobby()
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "messages": (2, 0.001)}
    fresh_bucket("messages", user.pk)  # user ids repeat across test runs; Redis keeps buckets

    results = send_many([Send(user, room.pk, f"m{n}") for n in range(3)])

    assert [isinstance(r, tuple) for r in results] == [True, True, False]
    assert isinstance(results[2], RateLimited)


def test_a_support_message_reaches_the_staff_inbox_and_notifies_who_is_away(
    send_many: SendMany, user: User, announced: list[tuple[list[str], dict[str, Any]]]
) -> None:
    room, _ = services.support_room_get_or_create(user=user)
    agent = StaffFactory.create()
    services.message_send(user=agent, room_id=room.pk, text="How can I help?")
    announced.clear()

    results = send_many([Send(user, room.pk, "My booking", "s1", rate_limit=None)])

    message, created = results[0]  # type: ignore[misc]
    assert created is True
    inbox = [e for groups, e in announced if groups == [realtime.STAFF_GROUP]]
    assert [(e["type"], e["message"]["id"], e["room"]["id"]) for e in inbox] == [
        ("support_message", message.pk, room.pk)
    ]
    room.refresh_from_db()
    assert room.awaiting_staff_since == message.created_at
    # The agent is offline: told by a MESSAGE notification (before the send is answered).
    notified = Notification.objects.filter(user=agent, type="MESSAGE")
    assert [n.data["messageId"] for n in notified] == [message.pk]


@pytest.mark.services
def test_the_loop_reconnects_when_its_idle_connection_died(user: User) -> None:
    room = lobby()

    async def two_sends_with_the_server_side_gone_between() -> list[services.SendResult]:
        try:
            (first,) = await store.messages_send([Send(user, room.pk, "one", rate_limit=None)])
            # What a PostgreSQL restart does to the loop's idle connection:
            (idle,) = store._connections._state().idle
            killer = await psycopg.AsyncConnection.connect(**loop_db.connection_params())
            await killer.execute("SELECT pg_terminate_backend(%s)", [idle.conn.info.backend_pid])
            await killer.close()
            (second,) = await store.messages_send([Send(user, room.pk, "two", rate_limit=None)])
            return [first, second]
        finally:
            await store.close_connections()

    results = async_to_sync(two_sends_with_the_server_side_gone_between)()

    assert [(m.message, created) for m, created in results] == [  # type: ignore[misc]
        ("one", True),
        ("two", True),
    ]


def test_a_stored_message_is_answered_even_if_announcing_it_fails(
    send_many: SendMany, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    room = lobby()

    def broken(batch: Any, **meta: Any) -> None:
        raise RuntimeError("channel layer gone")

    monkeypatch.setattr(realtime, "send_each", broken)

    results = send_many([Send(user, room.pk, "kept", "k1", rate_limit=None)])

    message, created = results[0]  # type: ignore[misc]
    assert created is True
    assert ChatMessage.objects.get(client_id="k1").pk == message.pk


@pytest.mark.services
def test_a_batch_is_stored_in_two_round_trips(round_trips: list[str], user: User) -> None:
    """`BEGIN` with the room lock; the insert, the rooms' update, the new participants and
    `COMMIT` together."""
    room, other_room = lobby(), lobby("Other")

    results = async_to_sync(_on_the_loop)(
        [Send(user, room.pk, "one", "c1"), Send(user, other_room.pk, "two", "c2")]
    )

    assert all(created for _, created in results)  # type: ignore[misc]
    assert len(round_trips) == 2
    assert round_trips[0].startswith("BEGIN; SELECT")
    statements = [part.split(" ")[0] for part in round_trips[1].split("; ")]
    assert statements == ["INSERT", "UPDATE", "INSERT", "COMMIT"]
