"""Reads of chat: which rooms a user sees, history pages and unread counts."""

from collections.abc import Collection, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    JSONField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, JSONObject

from accounts.models import Profile
from chat.models import ChatMessage, ChatRoom, ChatRoomParticipant
from travelsite import sql

Kind = ChatRoom.Kind


def room_visible_to(*, user: User, room: ChatRoom, participant: bool | None = None) -> bool:
    """Who may see (read, join) a room: CONTRACT.md's room rules.

    Participants see their rooms; anyone signed in sees public rooms; staff see every support
    room. Everything else is answered as if the room did not exist.
    """
    if not room.is_active and not user.is_staff:
        return False
    if room.kind == Kind.PUBLIC:
        return True
    if room.kind == Kind.SUPPORT and user.is_staff:
        return True
    if participant is None:
        participant = ChatRoomParticipant.objects.filter(room=room, user_id=user.pk).exists()
    return participant


def visible_room(*, user: User, room_id: int) -> ChatRoom | None:
    room = room_by_id(room_id)
    if room is None or not room_visible_to(user=user, room=room):
        return None
    return room


ROOM_FIELDS = ChatRoom._meta.concrete_fields
ROOM_COLUMNS = ", ".join(f"r.{field.column}" for field in ROOM_FIELDS)
_ROOM_ATTNAMES = [field.attname for field in ROOM_FIELDS]
_load_room_row = sql.RowLoader(ROOM_FIELDS)
_ROOM_BY_ID = f"SELECT {ROOM_COLUMNS} FROM {ChatRoom._meta.db_table} r WHERE r.id = %s"  # noqa: S608


def room_from_row(values: Sequence[Any]) -> ChatRoom:
    """A room from the values of `ROOM_COLUMNS`, as the ORM would load it."""
    return ChatRoom.from_db(connection.alias, _ROOM_ATTNAMES, _load_room_row(values))


def room_by_id(room_id: int) -> ChatRoom | None:
    """`ChatRoom.objects.filter(pk=room_id).first()` without compiling a queryset (checked on
    every history page and socket join)."""
    with connection.cursor() as cursor:
        cursor.execute(_ROOM_BY_ID, [room_id])
        row = cursor.fetchone()
    return None if row is None else room_from_row(row)


def unread_count(*, user_id: int, room_id: int, last_read_message_id: int) -> int:
    """Other users' visible messages after the read marker (an index range scan)."""
    counts = unread_counts_by_room(user_id=user_id, read_markers={room_id: last_read_message_id})
    return counts.get(room_id, 0)


def unread_counts_for_room(
    *,
    room_id: int,
    exclude_user_id: int | None = None,
    online_only: bool = False,
    user_ids: list[int] | None = None,
    through: int | None = None,
) -> dict[int, int]:
    """{user id: unread count} for every participant of a room (`online_only`: those online,
    who have sockets to tell; `user_ids`: those of these users), in one query; `through`:
    counting messages up to that id only.

    Each participant's count reads only its own range of the room's messages (a subquery with
    the room as a constant, so PostgreSQL plans it on the room's message index), not the whole
    room once per participant.
    """
    unread = (
        ChatMessage.objects.filter(
            room_id=room_id, is_hidden=False, id__gt=OuterRef("last_read_message_id")
        )
        .exclude(sender_id=OuterRef("user_id"))
        .order_by()
        .values("room_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    if through is not None:
        unread = unread.filter(id__lte=through)
    participants = ChatRoomParticipant.objects.filter(room_id=room_id)
    if online_only:
        participants = participants.filter(user__presence__is_online=True)
    if user_ids is not None:
        participants = participants.filter(user_id__in=user_ids)
    if exclude_user_id is not None:
        participants = participants.exclude(user_id=exclude_user_id)
    rows = participants.annotate(
        unread=Coalesce(Subquery(unread, output_field=IntegerField()), 0)
    ).values_list("user_id", "unread")
    return dict(rows)


@dataclass(frozen=True)
class RoomUnread:
    """Some participants' unread counts in a room, counted through message `through`:
    {user id: (their read marker then, their count)}."""

    through: int
    counts: dict[int, tuple[int, int]]


#: room id -> (the participants to count, what was counted before or None).
UnreadWanted = dict[int, tuple[Collection[int], RoomUnread | None]]


_PARTICIPANTS = ChatRoomParticipant._meta.db_table
_MESSAGES = ChatMessage._meta.db_table


def unread_counts_advanced(wanted: UnreadWanted) -> dict[int, RoomUnread]:
    """Each room's participants' unread counts now, read from what changed since `known`.

    Counting a participant's whole unread range again at every new message costs a scan of
    everything they have not read (thousands of rows for someone away from a busy room, every
    time it speaks). Here a participant whose read marker has not moved gets the count `known`
    plus the others' new messages, read in one grouped range scan after `known.through`; only
    participants whose marker moved, or who are new to `known`, are counted in full (through
    the same message). Within a room ids follow commit order (`messages_send` locks the room),
    so no message can appear later below `through`. Messages hidden since `known` are not seen:
    after a hide, pass `known=None`. Users who are not participants are left out.

    Any number of rooms (a window's announcement names every room that spoke) cost the same
    three queries, plus the full recounts.
    """
    if not wanted:
        return {}
    asked = {room_id: _as_set(users) for room_id, (users, _known) in wanted.items()}
    # Rooms often share one set (a process asks for all its users in each): each read once.
    user_ids = sorted(set().union(*{id(users): users for users in asked.values()}.values()))
    markers: dict[int, dict[int, int]] = {room_id: {} for room_id in wanted}
    through = {room_id: known.through for room_id, (_u, known) in wanted.items() if known}
    new_by_sender: dict[int, dict[int, int]] = {room_id: {} for room_id in wanted}
    # Plain SQL (travelsite/sql.py): built with the ORM, these two queries of every window
    # cost several ms of Python for ten rooms and a hundred users (docs/performance.md).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT room_id, user_id, last_read_message_id FROM {_PARTICIPANTS}"  # noqa: S608
            f" WHERE room_id IN ({sql.placeholders(len(wanted))})"
            f" AND user_id IN ({sql.placeholders(len(user_ids))})",
            [*wanted, *user_ids],
        )
        for room_id, user_id, marker in cursor.fetchall():
            if user_id in asked[room_id]:
                markers[room_id][user_id] = marker
        if through:
            after = " OR ".join(["(room_id = %s AND id > %s)"] * len(through))
            cursor.execute(
                f"SELECT room_id, sender_id, COUNT(id), MAX(id) FROM {_MESSAGES}"  # noqa: S608
                f" WHERE is_hidden = %s AND ({after}) GROUP BY room_id, sender_id",
                [False, *(value for pair in through.items() for value in pair)],
            )
            for room_id, sender_id, count, last in cursor.fetchall():
                new_by_sender[room_id][sender_id] = count
                through[room_id] = max(through[room_id], last)
    if uncounted := [room_id for room_id in wanted if room_id not in through]:
        visible = ChatMessage.objects.filter(is_hidden=False).order_by()
        through.update(dict.fromkeys(uncounted, 0))
        through.update(
            visible.filter(room_id__in=uncounted)
            .values("room_id")
            .annotate(last=Max("id"))
            .values_list("room_id", "last")
        )
    return {
        room_id: _advanced(
            room_id, markers[room_id], known, new_by_sender[room_id], through[room_id]
        )
        for room_id, (_users, known) in wanted.items()
    }


def _as_set(users: Collection[int]) -> AbstractSet[int]:
    return users if isinstance(users, AbstractSet) else set(users)


def _advanced(
    room_id: int,
    markers: dict[int, int],
    known: RoomUnread | None,
    new_by_sender: dict[int, int],
    through: int,
) -> RoomUnread:
    new_total = sum(new_by_sender.values())
    counts: dict[int, tuple[int, int]] = {}
    recount: list[int] = []
    for user_id, marker in markers.items():
        before = known.counts.get(user_id) if known is not None else None
        if before is not None and before[0] == marker:
            counts[user_id] = (marker, before[1] + new_total - new_by_sender.get(user_id, 0))
        else:
            recount.append(user_id)
    if recount:
        full = unread_counts_for_room(room_id=room_id, user_ids=recount, through=through)
        for user_id in recount:
            counts[user_id] = (markers[user_id], full.get(user_id, 0))
    return RoomUnread(through=through, counts=counts)


def _direct_member(position: int) -> Case:
    """A direct room's member number `position` (0 or 1, by id) as `{id, firstName, lastName}`.

    A subquery in the list's one query, so naming a direct room by "the other person" costs none.
    """
    member = (
        ChatRoomParticipant.objects.filter(room=OuterRef("pk"))
        .order_by("user_id")
        .values(
            card=JSONObject(id="user_id", firstName="user__first_name", lastName="user__last_name")
        )[position : position + 1]
    )
    return Case(
        When(kind=Kind.DIRECT, then=Subquery(member, output_field=JSONField())),
        default=Value(None, output_field=JSONField()),
        output_field=JSONField(),
    )


def room_list(*, user: User) -> QuerySet[ChatRoom]:
    """The rooms `user` participates in, most recent activity first (`with_unread_counts` adds
    their unread counts).

    Direct rooms carry their two members (`direct_member_0/1`), support rooms their owner, so
    clients can name a room by the other person without further queries.
    """
    return (
        ChatRoom.objects.filter(participants__user_id=user.pk, is_active=True)
        # Filtered above, so this reads the caller's own participation row.
        .annotate(my_last_read=F("participants__last_read_message_id"))
        .select_related("last_message__sender__profile", "owner")
        .annotate(direct_member_0=_direct_member(0), direct_member_1=_direct_member(1))
        .order_by("-last_activity_at", "-id")
    )


def with_unread_counts(rooms: list[ChatRoom], *, user: User) -> list[ChatRoom]:
    """`rooms` (from `room_list`), each with its `unread_count`, from one more query.

    The counts are read with each room's id and read marker as constants, so PostgreSQL reads
    one index range per room. As a correlated subquery of the list it could not see them and
    planned a scan of the whole message table by id: 350 ms for three rooms at 1.5 million
    messages for a user far behind, where this takes a few.
    """
    markers = {room.pk: room.my_last_read or 0 for room in rooms}  # type: ignore[attr-defined]
    counts = unread_counts_by_room(user_id=user.pk, read_markers=markers)
    for room in rooms:
        room.unread_count = counts.get(room.pk, 0)  # type: ignore[attr-defined]
    return rooms


def unread_counts_by_room(*, user_id: int, read_markers: dict[int, int]) -> dict[int, int]:
    """{room id: other users' visible messages after the read marker} (one query)."""
    if not read_markers:
        return {}
    after_marker = Q()
    for room_id, marker in read_markers.items():
        after_marker |= Q(room_id=room_id, id__gt=marker)
    rows = (
        ChatMessage.objects.filter(after_marker, is_hidden=False)
        .exclude(sender_id=user_id)
        .order_by()
        .values("room_id")
        .annotate(n=Count("id"))
        .values_list("room_id", "n")
    )
    return dict(rows)


def room_of(*, user: User, room_id: int) -> ChatRoom:
    """One of `user`'s rooms as the room list has it (raises ChatRoom.DoesNotExist otherwise)."""
    (room,) = with_unread_counts([room_list(user=user).get(pk=room_id)], user=user)
    return room


def support_rooms_waiting() -> QuerySet[ChatRoom]:
    """Support rooms whose last traveller message awaits a staff answer, oldest first."""
    return (
        ChatRoom.objects.filter(kind=Kind.SUPPORT, awaiting_staff_since__isnull=False)
        .select_related("last_message__sender__profile", "owner")
        .order_by("awaiting_staff_since", "id")
    )


class MessageRow(NamedTuple):
    """A history row: the message and what its sender's card needs (shapes.message_row_shape)."""

    id: int
    message: str
    room_id: int
    sender_id: int
    client_id: str | None
    created_at: datetime
    first_name: str
    last_name: str
    profile_image: str | None


def _row_sql() -> tuple[str, list[Any]]:
    """The page's SELECT … FROM … JOIN (from the models' names) and its fields, in row order."""
    message: Any = ChatMessage._meta
    user: Any = message.get_field("sender").related_model._meta
    profile: Any = Profile._meta
    fields = [
        *((message, message.get_field(name)) for name in _MESSAGE_COLUMNS),
        (user, user.get_field("first_name")),
        (user, user.get_field("last_name")),
        (profile, profile.get_field("profile_image")),
    ]
    alias = {message: "m", user: "u", profile: "p"}
    columns = ", ".join(f"{alias[meta]}.{field.column}" for meta, field in fields)
    sender = message.get_field("sender").column
    select = (
        f"SELECT {columns} FROM {message.db_table} m"  # noqa: S608
        f" JOIN {user.db_table} u ON u.{user.pk.column} = m.{sender}"
        f" LEFT JOIN {profile.db_table} p ON p.{profile.get_field('user').column} = m.{sender}"
        # NOT is_hidden: the predicate of the room's message index (message_room_visible_idx)
        " WHERE m.room_id = %s AND NOT m.is_hidden"
    )
    return select, [field for _, field in fields]


_MESSAGE_COLUMNS = ["id", "message", "room", "sender", "client_id", "created_at"]
_ROW_SELECT, _ROW_FIELDS = _row_sql()
_load_row = sql.RowLoader(_ROW_FIELDS)
#: The page's three ways: forward from `after`, back from `before`, back from the newest.
_PAGE_SQL = {
    "after": f"{_ROW_SELECT} AND m.id > %s ORDER BY m.id LIMIT %s",
    "before": f"{_ROW_SELECT} AND m.id < %s ORDER BY m.id DESC LIMIT %s",
    "newest": f"{_ROW_SELECT} AND m.id <= %s ORDER BY m.id DESC LIMIT %s",
}


def message_page(
    *, room: ChatRoom, before: int | None = None, after: int | None = None, limit: int = 50
) -> tuple[list[MessageRow], bool]:
    """One page of a room's history, oldest first, and whether more lie beyond it.

    `after` pages forward (newer); `before`, or no cursor, pages backward from the newest.
    Rows, not models: a page of models (message, sender, profile) cost 150 instances.
    """
    if after is not None:
        page = _rows("after", room.pk, after, limit + 1)
        return page[:limit], len(page) > limit
    if before is None:
        # The newest page starts at the room's last message (as loaded with `room`). Without
        # that bound, in a room holding most of the table PostgreSQL walks the primary key down
        # from the newest message of all, past every newer message of the other rooms (8k of
        # them: 2 ms).
        if room.last_message_id is None:
            return [], False
        page = _rows("newest", room.pk, room.last_message_id, limit + 1)
    else:
        page = _rows("before", room.pk, before, limit + 1)
    return page[:limit][::-1], len(page) > limit


def _rows(way: str, room_id: int, bound: int, count: int) -> list[MessageRow]:
    """Plain SQL (travelsite.sql): the ORM spent 0.9 ms of a page's 1.6 compiling it."""
    with connection.cursor() as cursor:
        cursor.execute(_PAGE_SQL[way], [room_id, bound, count])
        rows = cursor.fetchall()
    return [MessageRow(*values) for values in _load_row.rows(rows)]


def support_rooms_inbox() -> QuerySet[ChatRoom]:
    """Every support room for the staff inbox: waiting ones first (oldest wait first), then
    the others by latest activity; owner and last message selected."""
    return (
        ChatRoom.objects.filter(kind=Kind.SUPPORT)
        .select_related("last_message__sender__profile", "owner")
        .order_by(
            F("awaiting_staff_since").asc(nulls_last=True),
            "-last_activity_at",
            "-id",
        )
    )
