"""Several sends stored by one `messages_send` call: each answered as if sent alone."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import services
from chat.models import ChatMessage, ChatRoom
from tests.chat.helpers import fresh_bucket, lobby
from tests.factories import UserFactory
from travelsite.ratelimit import RateLimited

pytestmark = pytest.mark.django_db

Send = services.SendRequest


def test_a_batch_is_stored_in_order_with_one_result_per_request(user: User) -> None:
    room, other_room = lobby(), lobby("Other")
    friend = UserFactory.create()

    results = services.messages_send(
        [
            Send(user, room.pk, "one", "c1"),
            Send(friend, other_room.pk, "two", "c2"),
            Send(user, room.pk, "three", "c3"),
        ]
    )

    assert [(m.message, created) for m, created in results] == [  # type: ignore[misc]
        ("one", True),
        ("two", True),
        ("three", True),
    ]
    ids = [m.pk for m, _ in results]  # type: ignore[misc]
    assert ids == sorted(ids)
    room.refresh_from_db()
    other_room.refresh_from_db()
    assert room.last_message_id == ids[2]
    assert other_room.last_message_id == ids[1]
    assert ChatMessage.objects.count() == 3


def test_refused_requests_do_not_stop_the_others(user: User) -> None:
    room = lobby()
    direct, _ = services.direct_room_get_or_create(
        user=UserFactory.create(), other_user_id=UserFactory.create().pk
    )

    results = services.messages_send(
        [
            Send(user, room.pk, "", "empty"),
            Send(user, 10**9, "nowhere", "missing"),
            Send(user, direct.pk, "not mine", "direct"),
            Send(user, room.pk, "fine", "ok"),
        ]
    )

    assert isinstance(results[0], services.Invalid)
    assert isinstance(results[1], services.NotFound)
    assert isinstance(results[2], services.NotFound)  # not visible: as if it did not exist
    message, created = results[3]  # type: ignore[misc]
    assert (message.message, created) == ("fine", True)
    assert list(ChatMessage.objects.values_list("client_id", flat=True)) == ["ok"]


def test_a_client_id_repeated_in_the_batch_or_stored_before_is_stored_once(user: User) -> None:
    room = lobby()
    first, _ = services.message_send(user=user, room_id=room.pk, text="hi", client_id="a")

    results = services.messages_send(
        [
            Send(user, room.pk, "hi", "a"),  # a retry of what was stored before
            Send(user, room.pk, "new", "b"),
            Send(user, room.pk, "new", "b"),  # the same send twice in one batch
        ]
    )

    assert results[0] == (first, False)
    new, created = results[1]  # type: ignore[misc]
    assert created is True
    assert results[2] == (new, False)
    assert ChatMessage.objects.filter(sender=user).count() == 2


def test_a_retry_is_acknowledged_even_when_now_refused(user: User, settings: Any) -> None:
    room = lobby()
    stored, _ = services.message_send(user=user, room_id=room.pk, text="hi", client_id="a")
    ChatRoom.objects.filter(pk=room.pk).update(is_active=False)
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "messages": (1, 0.001)}

    results = services.messages_send(
        [Send(user, room.pk, "hi", "a"), Send(user, room.pk, "hi", "b")]
    )

    assert results[0] == (stored, False)
    assert isinstance(results[1], services.NotFound | RateLimited)


def test_a_rate_limit_taken_by_the_caller_is_used_not_taken_again(
    user: User, settings: Any
) -> None:
    """The socket path takes the limit on the event loop and passes the verdict in."""
    room = lobby()
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "messages": (1, 0.001)}
    fresh_bucket("messages", user.pk)  # user ids repeat across test runs; Redis keeps buckets
    limited = RateLimited("messages", 3.0)

    allowed = services.messages_send(
        [Send(user, room.pk, f"m{n}", f"c{n}", rate_limit=None) for n in range(3)]
    )
    refused = services.messages_send(
        [
            Send(user, room.pk, "m0", "c0", rate_limit=limited),
            Send(user, room.pk, "x", "new", limited),
        ]
    )

    assert [created for _, created in allowed] == [True, True, True]  # type: ignore[misc]
    assert refused[0] == (allowed[0][0], False)  # type: ignore[index]  # a retry: still acked
    assert refused[1] is limited
    # The bucket (one message) was not touched by any of those: one more send takes it.
    first, second = (services.messages_send([Send(user, room.pk, t)])[0] for t in "yz")
    assert isinstance(first, tuple) and first[1] is True
    assert isinstance(second, RateLimited)


def test_a_batch_costs_the_same_statements_however_many_messages(user: User) -> None:
    room = lobby()
    created = UserFactory.create_batch(20)
    for other in created:
        services.public_room_create_or_join(user=other, name="Lobby")
    # As sockets hold them: with profiles loaded (message shapes name the sender).
    others = list(User.objects.select_related("profile").filter(pk__in=[u.pk for u in created]))
    services.message_send(user=user, room_id=room.pk, text="warm up", client_id="w")

    def statements(count: int) -> int:
        batch = [Send(others[n], room.pk, f"m{n}", f"{count}-{n}") for n in range(count)]
        with CaptureQueriesContext(connection) as queries:
            results = services.messages_send(batch)
        assert all(created for _, created in results)  # type: ignore[misc]
        return len(queries)

    assert statements(1) == statements(20)


def test_prev_ids_chain_through_a_batch(user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    room = lobby()
    before, _ = services.message_send(user=user, room_id=room.pk, text="before")
    announced: list[tuple[int, int | None]] = []
    monkeypatch.setattr(
        services.events,
        "message_created",
        lambda message, previous_id: announced.append((message.pk, previous_id)),
    )

    results = services.messages_send([Send(user, room.pk, f"m{n}") for n in range(3)])

    ids = [m.pk for m, _ in results]  # type: ignore[misc]
    assert announced == [(ids[0], before.pk), (ids[1], ids[0]), (ids[2], ids[1])]


def test_unread_counts_for_online_only_leave_out_those_offline(user: User) -> None:
    from chat import selectors
    from presence.models import UserPresence

    room = lobby()
    away, here = UserFactory.create_batch(2)
    for member in (away, here):
        services.public_room_create_or_join(user=member, name="Lobby")
    UserPresence.objects.create(user=here, is_online=True)
    UserPresence.objects.create(user=away, is_online=False)
    services.message_send(user=user, room_id=room.pk, text="news")

    everyone = selectors.unread_counts_for_room(room_id=room.pk)
    online = selectors.unread_counts_for_room(room_id=room.pk, online_only=True)

    assert everyone[away.pk] == everyone[here.pk] == 1
    assert online == {here.pk: 1}
