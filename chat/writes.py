"""The statements of the message write path (chat.services.messages_send), kept lean.

Storing a batch of messages is the hottest write of the site; through the ORM each of its
statements cost more Python time than PostgreSQL time (a room `update()` about 0.5 ms, the
`bulk_create` of eight messages 1.4 ms, against round trips of 0.15 ms). These are the same
statements written once: plain SQL that runs on PostgreSQL and SQLite alike, values adapted by
the backend (`connection.ops`); a batch's rooms are updated by one statement.

Only table and column names from the models and `%s` placeholders are put into the SQL text
(hence the `noqa: S608`); every value is a parameter.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from chat import selectors
from chat.models import ChatMessage, ChatRoom, ChatRoomParticipant
from travelsite import sql

_ROOM = ChatRoom._meta.db_table
_PARTICIPANT = ChatRoomParticipant._meta.db_table
_MESSAGE = ChatMessage._meta.db_table


def rooms_locked(
    room_ids: Sequence[int], user_ids: Sequence[int]
) -> tuple[dict[int, ChatRoom], set[tuple[int, int]]]:
    """The rooms, locked in id order until the transaction ends, and which of these users
    take part in which of them: {room id: room}, {(room id, user id)}, in one statement.

    Locking in id order keeps two batches touching the same rooms from deadlocking.
    """
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    joined = (
        "string_agg(p.user_id::text, ',')"
        if connection.vendor == "postgresql"
        else "group_concat(p.user_id)"
    )
    participants = (
        f"(SELECT {joined} FROM {_PARTICIPANT} p WHERE p.room_id = r.id"  # noqa: S608
        f" AND p.user_id IN ({sql.placeholders(len(user_ids))}))"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {selectors.ROOM_COLUMNS}, {participants} FROM {_ROOM} r"  # noqa: S608
            f" WHERE r.id IN ({sql.placeholders(len(room_ids))}) ORDER BY r.id{lock}",
            [*user_ids, *room_ids],
        )
        rows = cursor.fetchall()
    rooms: dict[int, ChatRoom] = {}
    participating: set[tuple[int, int]] = set()
    for *values, participant_ids in rows:
        room = selectors.room_from_row(values)
        rooms[room.pk] = room
        for user_id in str(participant_ids or "").split(","):
            if user_id:
                participating.add((room.pk, int(user_id)))
    return rooms, participating


def messages_insert(messages: Sequence[ChatMessage], *, now: datetime) -> None:
    """Insert new messages in one statement, setting their ids and `created_at` (`now`).

    Ids are returned in the order of the rows (as the ORM's `bulk_create` relies on too).
    """
    adapt = connection.ops.adapt_datetimefield_value
    created_at = adapt(now)
    rows = [(m.room_id, m.sender_id, m.message, m.client_id, created_at, False) for m in messages]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_MESSAGE} (room_id, sender_id, message, client_id, created_at,"  # noqa: S608
            f" is_hidden) VALUES {values} RETURNING id",
            [value for row in rows for value in row],
        )
        ids = [row[0] for row in cursor.fetchall()]
    for message, message_id in zip(messages, ids, strict=True):
        message.pk = message_id
        message.created_at = now
        message.is_hidden = False
        message._state.adding = False
        message._state.db = connection.alias


def rooms_update_last_message(rooms: Sequence[ChatRoom], *, now: datetime) -> None:
    """Write each room's last message, last activity and support wait, in one statement."""
    if not rooms:
        return
    adapt = connection.ops.adapt_datetimefield_value
    cases: dict[str, list[str]] = {
        "last_message_id": [],
        "last_activity_at": [],
        "awaiting_staff_since": [],
    }
    params: dict[str, list[Any]] = {column: [] for column in cases}
    for room in rooms:
        values = {
            "last_message_id": room.last_message_id,
            "last_activity_at": adapt(room.last_activity_at),
            "awaiting_staff_since": adapt(room.awaiting_staff_since),
        }
        for column, value in values.items():
            cases[column].append("WHEN %s THEN %s")
            params[column] += [room.pk, value]
    # ELSE the column itself: a CASE whose branches are all NULL still has the column's type.
    assignments = ", ".join(
        f"{column} = CASE id {' '.join(whens)} ELSE {column} END" for column, whens in cases.items()
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_ROOM} SET {assignments}, updated_at = %s"  # noqa: S608
            f" WHERE id IN ({sql.placeholders(len(rooms))})",
            [value for column in cases for value in params[column]]
            + [adapt(now)]
            + [room.pk for room in rooms],
        )
    for room in rooms:
        room.updated_at = now
