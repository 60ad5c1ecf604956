"""On PostgreSQL the hot statements are prepared once per connection, not planned every time."""

import pytest
from django.contrib.auth.models import User
from django.db import connection

from chat import selectors, services

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_sending_and_reading_messages_reuse_prepared_statements(staff: User) -> None:
    room, _ = services.public_room_create_or_join(user=staff, name="Lobby")
    for n in range(3):
        services.message_send(user=staff, room_id=room.pk, text=f"hello {n}")
        selectors.message_page(room=selectors.visible_room(user=staff, room_id=room.pk) or room)

    statements = prepared_statements()

    assert any("FOR UPDATE" in s and "chat_chatroom" in s for s in statements), statements
    assert any(s.startswith("INSERT INTO chat_chatmessage") for s in statements), statements
    assert any("chat_chatmessage" in s and "LIMIT" in s for s in statements), statements
    assert all("hello" not in s for s in statements), "values are bound, not spliced in"


def test_a_query_with_new_values_runs_as_the_same_prepared_statement(staff: User) -> None:
    rooms = [services.public_room_create_or_join(user=staff, name=f"Room {n}")[0] for n in range(4)]
    for room in rooms:
        services.message_send(user=staff, room_id=room.pk, text="hi")
    before = len(prepared_statements())
    assert before > 0

    for room in rooms:
        services.message_send(user=staff, room_id=room.pk, text="again")

    assert len(prepared_statements()) == before
