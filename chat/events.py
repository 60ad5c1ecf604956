"""Chat events: what each action tells whom. Sent through travelsite.realtime on commit."""

import asyncio

from django.db import transaction

from chat import selectors
from chat.models import ChatMessage, ChatRoom
from chat.shapes import message_shape, room_shape
from travelsite import realtime


def message_created(message: ChatMessage, *, previous_id: int | None) -> None:
    """`message` to every socket joined to the room, then `unread` to the others' sockets.

    `prevId` (the room's message before this one) lets a client see that it missed an event and
    fill the gap with `sync`.
    """
    room_id = message.room_id
    shape = message_shape(message)
    realtime.send_on_commit(
        [realtime.room_group(room_id)], {"type": "message", "message": shape, "prevId": previous_id}
    )
    if message.room.kind == ChatRoom.Kind.SUPPORT:
        # The staff inbox follows every support room live.
        realtime.send_on_commit(
            [realtime.STAFF_GROUP],
            {"type": "support_message", "room": room_shape(message.room), "message": shape},
        )

    transaction.on_commit(lambda: unread_counts_changed(room_id), robust=True)


#: Rooms whose `unread` push is pending in this process (touched on the event loop only).
_unread_pending: set[int] = set()
_unread_pusher: "asyncio.Task[None] | None" = None
#: How long a room's `unread` pushes are gathered: a busy room costs one push per window, not
#: one per message (the counts are read once, when the push goes out).
UNREAD_COALESCE_SECONDS = 0.3
#: Every process hears here which rooms have new messages; each tells its own sockets
#: (chat/unread_ws.py). One send per window, however many participants.
UNREAD_ROOMS_GROUP = "unread-rooms"
UNREAD_ROOMS_TYPE = "unread.rooms"


def unread_counts_changed(room_id: int) -> None:
    """Tell the room's participants' other sockets their unread counts, soon and coalesced."""
    if room_id in _unread_pending:
        return  # already on its way (a stale read here only costs one more scheduling)
    if not realtime.run_soon(_note_unread_counts_changed(room_id)):
        send_unread_counts(room_id)  # no server loop (tests, scripts): at once


async def _note_unread_counts_changed(room_id: int) -> None:
    global _unread_pusher
    _unread_pending.add(room_id)
    if _unread_pusher is None or _unread_pusher.done():
        _unread_pusher = asyncio.get_running_loop().create_task(_announce_unread_rooms())


async def _announce_unread_rooms() -> None:
    """One task per process: every window, the rooms with new messages, to every process."""
    while _unread_pending:
        await asyncio.sleep(UNREAD_COALESCE_SECONDS)
        rooms = sorted(_unread_pending)
        _unread_pending.clear()
        await realtime.asend_messages(
            [(UNREAD_ROOMS_GROUP, {"type": UNREAD_ROOMS_TYPE, "rooms": rooms})]
        )


def send_unread_counts(room_id: int) -> None:
    counts = selectors.unread_counts_for_room(room_id=room_id, online_only=True)
    realtime.send_each(_unread_batch(room_id, counts), unless_joined=room_id)


def _unread_batch(room_id: int, counts: dict[int, int]) -> realtime.Batch:
    return [
        (
            [realtime.user_group(user_id)],
            {"type": "unread", "roomId": room_id, "unreadCount": count},
        )
        for user_id, count in counts.items()
    ]


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
    realtime.send_on_commit(
        [realtime.room_group(message.room_id)],
        {"type": "message_hidden", "roomId": message.room_id, "messageId": message.pk},
    )
