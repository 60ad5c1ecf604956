"""Chat events: what each action tells whom. Sent through travelsite.realtime on commit."""

import asyncio
from typing import Any

from django.db import transaction

from chat.models import ChatMessage, ChatRoom
from chat.shapes import message_shape, room_shape
from travelsite import realtime


def message_created(
    message: ChatMessage, *, previous_id: int | None
) -> tuple[list[str], dict[str, Any]]:
    """`message` to every socket joined to the room: (groups, event), sent by the store once it
    commits, followed by `unread` to the others' sockets (`unread_counts_changed`).

    `prevId` (the room's message before this one) lets a client see that it missed an event and
    fill the gap with `sync`. Needs no query (the sender's profile is loaded).
    """
    event = {"type": "message", "message": message_shape(message), "prevId": previous_id}
    return [realtime.room_group(message.room_id)], event


def support_message_created(message: ChatMessage) -> None:
    """The staff inbox follows every support room live (after commit; may query the room)."""
    if message.room.kind == ChatRoom.Kind.SUPPORT:
        realtime.send(
            [realtime.STAFF_GROUP],
            {
                "type": "support_message",
                "room": room_shape(message.room),
                "message": message_shape(message),
            },
        )


#: Rooms whose `unread` push is pending in this process (touched on the event loop only).
_unread_pending: set[int] = set()
_unread_recount: set[int] = set()
_unread_pusher: "asyncio.Task[None] | None" = None
#: How long a room's `unread` pushes are gathered: a busy room costs one push per window, not
#: one per message (the counts are read once, when the push goes out).
UNREAD_COALESCE_SECONDS = 0.3
#: Every process hears here which rooms have new messages; each tells its own sockets
#: (chat/unread_ws.py). One send per window, however many participants.
UNREAD_ROOMS_GROUP = "unread-rooms"
UNREAD_ROOMS_TYPE = "unread.rooms"


def unread_counts_changed(room_id: int, *, recount: bool = False) -> None:
    """Tell the room's participants' other sockets their unread counts, soon and coalesced.

    `recount`: a message left the counts (hidden), so processes count the room in full instead
    of advancing what they counted before (chat/unread_ws.py).
    """
    if room_id in _unread_pending and (not recount or room_id in _unread_recount):
        return  # already on its way (a stale read here only costs one more scheduling)
    if not realtime.run_soon(_note_unread_counts_changed(room_id, recount)):
        # No server loop here (a script, a worker, a test): announce the room at once.
        realtime.send_prepared([_unread_rooms_message([room_id], [room_id] if recount else [])])


async def _note_unread_counts_changed(room_id: int, recount: bool) -> None:
    global _unread_pusher
    _unread_pending.add(room_id)
    if recount:
        _unread_recount.add(room_id)
    if _unread_pusher is None or _unread_pusher.done():
        _unread_pusher = asyncio.get_running_loop().create_task(_announce_unread_rooms())


async def _announce_unread_rooms() -> None:
    """One task per process: every window, the rooms with new messages, to every process."""
    while _unread_pending:
        await asyncio.sleep(UNREAD_COALESCE_SECONDS)
        rooms, recount = sorted(_unread_pending), sorted(_unread_recount)
        _unread_pending.clear()
        _unread_recount.clear()
        await realtime.asend_messages([_unread_rooms_message(rooms, recount)])


def _unread_rooms_message(rooms: list[int], recount: list[int]) -> tuple[str, dict[str, Any]]:
    return UNREAD_ROOMS_GROUP, {"type": UNREAD_ROOMS_TYPE, "rooms": rooms, "recount": recount}


def read_marker_moved(*, user_id: int, room_id: int, message_id: int, unread_count: int) -> None:
    realtime.send_on_commit(
        [realtime.user_group(user_id)],
        {"type": "unread", "roomId": room_id, "unreadCount": unread_count},
    )
    realtime.send_on_commit(
        [realtime.room_group(room_id)],
        {"type": "read", "roomId": room_id, "userId": user_id, "messageId": message_id},
    )


def message_hidden(message: ChatMessage) -> None:
    """`message_hidden` to the room; the others' unread counts drop if they had not read it."""
    room_id = message.room_id
    realtime.send_on_commit(
        [realtime.room_group(room_id)],
        {"type": "message_hidden", "roomId": room_id, "messageId": message.pk},
    )
    transaction.on_commit(lambda: unread_counts_changed(room_id, recount=True), robust=True)
