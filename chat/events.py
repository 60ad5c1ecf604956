"""Chat events: what each action tells whom. Sent through travelsite.realtime on commit."""

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

    def send_unread_counts() -> None:
        counts = selectors.unread_counts_for_room(
            room_id=room_id, exclude_user_id=message.sender_id
        )
        realtime.send_each_on_commit(
            [
                (
                    [realtime.user_group(user_id)],
                    {"type": "unread", "roomId": room_id, "unreadCount": count},
                )
                for user_id, count in counts.items()
            ],
            unless_joined=room_id,
        )

    # Counted after commit, so the counts include this message.
    transaction.on_commit(send_unread_counts, robust=True)


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
