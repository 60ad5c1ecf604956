"""The lean statements behind `messages_send` (chat.writes) and the room lookup of every page
and join (selectors.room_by_id) load and write what the ORM would."""

import datetime

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat import selectors, services, writes
from chat.models import ChatMessage, ChatRoom
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

Send = services.SendRequest


def support_room_about_something(owner: User) -> ChatRoom:
    room, _ = services.support_room_get_or_create(user=owner)
    room.topic = {"type": "tour", "id": 7, "name": "Fjords · 01 Jun 2027"}
    room.awaiting_staff_since = timezone.now() - datetime.timedelta(minutes=5)
    room.save()
    return room


def test_locked_rooms_are_loaded_as_the_orm_loads_them(user: User) -> None:
    support = support_room_about_something(user)
    public, _ = services.public_room_create_or_join(user=StaffFactory.create(), name="Lobby")
    stranger = UserFactory.create()
    services.public_room_create_or_join(user=user, name="Lobby")
    services.public_room_create_or_join(user=stranger, name="Lobby")

    with transaction.atomic():
        statement = writes.rooms_locked([support.pk, public.pk, 10**9], [user.pk, stranger.pk])
        with connection.cursor() as cursor:
            cursor.execute(statement.sql, statement.params)
            rooms, participating = writes.rooms_locked_read(cursor.fetchall())

    assert sorted(rooms) == sorted([support.pk, public.pk])
    for room_id, loaded in rooms.items():
        expected = ChatRoom.objects.get(pk=room_id)
        for field in ChatRoom._meta.concrete_fields:
            assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    assert rooms[support.pk].topic == {"type": "tour", "id": 7, "name": "Fjords · 01 Jun 2027"}
    assert participating == {(support.pk, user.pk), (public.pk, user.pk), (public.pk, stranger.pk)}


def test_a_room_by_id_is_loaded_as_the_orm_loads_it(user: User) -> None:
    support = support_room_about_something(user)
    services.message_send(user=user, room_id=support.pk, text="hello")

    loaded = selectors.room_by_id(support.pk)

    expected = ChatRoom.objects.get(pk=support.pk)
    assert loaded is not None and loaded.pk == support.pk
    for field in ChatRoom._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    assert loaded.topic == {"type": "tour", "id": 7, "name": "Fjords · 01 Jun 2027"}
    assert selectors.room_by_id(10**9) is None


def test_a_batch_over_several_rooms_moves_each_rooms_last_message_and_support_wait() -> None:
    traveller, other_traveller = UserFactory.create_batch(2)
    staff = StaffFactory.create()
    answered = support_room_about_something(traveller)
    asked, _ = services.support_room_get_or_create(user=other_traveller)
    public, _ = services.public_room_create_or_join(user=staff, name="Lobby")
    before = timezone.now()

    results = services.messages_send(
        [
            Send(staff, answered.pk, "Here is your answer", "s1"),
            Send(other_traveller, asked.pk, "A question", "t1"),
            Send(staff, public.pk, "Welcome", "s2"),
        ]
    )

    messages = [message for message, _ in results]  # type: ignore[misc]
    for room, message in zip([answered, asked, public], messages, strict=True):
        room.refresh_from_db()
        assert room.last_message_id == message.pk
        assert room.last_activity_at == message.created_at
        assert room.updated_at >= before
    assert answered.awaiting_staff_since is None  # staff answered
    assert asked.awaiting_staff_since == messages[1].created_at  # waits since its question
    assert public.awaiting_staff_since is None
    assert answered.topic == {"type": "tour", "id": 7, "name": "Fjords · 01 Jun 2027"}


def test_stored_messages_read_back_as_returned(user: User) -> None:
    room, _ = services.public_room_create_or_join(user=StaffFactory.create(), name="Lobby")

    results = services.messages_send(
        [Send(user, room.pk, "één ☕", "a"), Send(user, room.pk, "two", None)]
    )

    for message, _ in results:  # type: ignore[misc]
        stored = ChatMessage.objects.get(pk=message.pk)
        assert (stored.message, stored.client_id, stored.created_at, stored.is_hidden) == (
            message.message,
            message.client_id,
            message.created_at,
            False,
        )
        assert stored.sender_id == user.pk and stored.room_id == room.pk


def test_a_batch_costs_the_same_statements_however_many_rooms() -> None:
    user = StaffFactory.create()
    rooms = [services.public_room_create_or_join(user=user, name=f"Room {n}")[0] for n in range(6)]
    services.message_send(user=user, room_id=rooms[0].pk, text="warm up")

    def statements(room_count: int) -> int:
        batch = [Send(user, room.pk, "hello") for room in rooms[:room_count]]
        with CaptureQueriesContext(connection) as queries:
            results = services.messages_send(batch)
        assert all(created for _, created in results)  # type: ignore[misc]
        return len(queries)

    assert statements(1) == statements(6)
