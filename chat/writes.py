"""The statements of the message write path (chat.services.messages_send), kept lean.

Storing a batch of messages is the hottest write of the site; through the ORM each of its
statements cost more Python time than PostgreSQL time (a room `update()` about 0.5 ms, the
`bulk_create` of eight messages 1.4 ms, against round trips of 0.15 ms). These are the same
statements written once: plain SQL that runs on PostgreSQL and SQLite alike, values adapted by
the backend (`connection.ops`); a batch's rooms are updated by one statement.

Each write is a `Statement` and, where it returns rows, a function that reads them: the same
statements run on Django's connection (a thread) or on the event loop's (chat.store).

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
from travelsite.sql import Rows, Statement

_ROOM = ChatRoom._meta.db_table
_PARTICIPANT = ChatRoomParticipant._meta.db_table
_MESSAGE = ChatMessage._meta.db_table


def rooms_locked(room_ids: Sequence[int], user_ids: Sequence[int]) -> Statement:
    """The rooms, locked in id order until the transaction ends, and which of these users
    take part in which of them (read by `rooms_locked_read`), in one statement.

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
    return Statement(
        f"SELECT {selectors.ROOM_COLUMNS}, {participants} FROM {_ROOM} r"  # noqa: S608
        f" WHERE r.id IN ({sql.placeholders(len(room_ids))}) ORDER BY r.id{lock}",
        [*user_ids, *room_ids],
    )


def rooms_locked_read(rows: Rows) -> tuple[dict[int, ChatRoom], set[tuple[int, int]]]:
    """{room id: room}, {(room id, user id) of participants} from `rooms_locked`'s rows."""
    rooms: dict[int, ChatRoom] = {}
    participating: set[tuple[int, int]] = set()
    for *values, participant_ids in rows or []:
        room = selectors.room_from_row(values)
        rooms[room.pk] = room
        for user_id in str(participant_ids or "").split(","):
            if user_id:
                participating.add((room.pk, int(user_id)))
    return rooms, participating


def messages_insert(
    messages: Sequence[ChatMessage], *, now: datetime, then: Sequence[Statement] = ()
) -> Statement:
    """Insert new messages in one statement (`created_at` = `now`), returning their ids in the
    order of the rows (as the ORM's `bulk_create` relies on too): `messages_inserted`.

    The last statement of a store: `then`, the writes that follow it (`rooms_update_last_message`,
    `participants_insert`), go with it, and on the event loop the COMMIT as well.
    """
    created_at = connection.ops.adapt_datetimefield_value(now)
    rows = [(m.room_id, m.sender_id, m.message, m.client_id, created_at, False) for m in messages]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
    return Statement(
        f"INSERT INTO {_MESSAGE} (room_id, sender_id, message, client_id, created_at,"  # noqa: S608
        f" is_hidden) VALUES {values} RETURNING id",
        [value for row in rows for value in row],
        then=tuple(then),
        last=True,
    )


def messages_inserted(messages: Sequence[ChatMessage], rows: Rows, *, now: datetime) -> None:
    """Give the inserted messages their ids (`messages_insert`'s rows) and `created_at`."""
    ids = [row[0] for row in rows or []]
    for message, message_id in zip(messages, ids, strict=True):
        message.pk = message_id
        message.created_at = now
        message.is_hidden = False
        message._state.adding = False
        message._state.db = connection.alias


#: A room's newest message: the messages just inserted in the same transaction included, and
#: the room is locked, so it is the last of those (the partial index's backward scan, one entry).
_NEWEST_MESSAGE = (
    f"(SELECT MAX(m.id) FROM {_MESSAGE} m WHERE m.room_id = {_ROOM}.id AND NOT m.is_hidden)"  # noqa: S608
)


def rooms_update_last_message(rooms: Sequence[ChatRoom], *, now: datetime) -> Statement:
    """Move each room's last message on to its newest (inserted just before, in the same round
    trip: `messages_insert`'s `then`), and write its last activity and support wait, in one
    statement."""
    adapt = connection.ops.adapt_datetimefield_value
    cases: dict[str, list[str]] = {"last_activity_at": [], "awaiting_staff_since": []}
    params: dict[str, list[Any]] = {column: [] for column in cases}
    for room in rooms:
        values = {
            "last_activity_at": adapt(room.last_activity_at),
            "awaiting_staff_since": adapt(room.awaiting_staff_since),
        }
        for column, value in values.items():
            cases[column].append("WHEN %s THEN %s")
            params[column] += [room.pk, value]
        room.updated_at = now
    # ELSE the column itself: a CASE whose branches are all NULL still has the column's type.
    assignments = ", ".join(
        f"{column} = CASE id {' '.join(whens)} ELSE {column} END" for column, whens in cases.items()
    )
    return Statement(
        f"UPDATE {_ROOM} SET last_message_id = {_NEWEST_MESSAGE}, {assignments},"  # noqa: S608
        f" updated_at = %s WHERE id IN ({sql.placeholders(len(rooms))})",
        [value for column in cases for value in params[column]]
        + [adapt(now)]
        + [room.pk for room in rooms],
        returns_rows=False,
    )


def participants_insert(participants: Sequence[tuple[int, int]], *, now: datetime) -> Statement:
    """Make users participants, (room id, user id) each, who have read up to the room's last
    message (after `rooms_update_last_message`: their own); one already taking part is left as
    it is (`bulk_create(ignore_conflicts=True)` in one statement)."""
    joined_at = connection.ops.adapt_datetimefield_value(now)
    read_up_to = f"(SELECT r.last_message_id FROM {_ROOM} r WHERE r.id = %s)"  # noqa: S608
    values = ", ".join([f"(%s, %s, {read_up_to}, %s)"] * len(participants))
    return Statement(
        f"INSERT INTO {_PARTICIPANT} (room_id, user_id, last_read_message_id, joined_at)"  # noqa: S608
        f" VALUES {values} ON CONFLICT DO NOTHING",
        [
            value
            for room_id, user_id in participants
            for value in (room_id, user_id, room_id, joined_at)
        ],
        returns_rows=False,
    )
