"""The wire shapes of chat (CONTRACT.md "Shapes"): one definition for REST and WebSocket."""

from datetime import datetime
from typing import Any

from accounts.selectors import card_of, user_card, user_summary
from chat.models import ChatMessage, ChatRoom
from chat.selectors import MessageRow


def message_shape(message: ChatMessage) -> dict[str, Any]:
    """A Message; expects `sender__profile` selected (else it costs queries)."""
    return _message(
        message.pk,
        message.message,
        message.room_id,
        message.sender_id,
        message.client_id,
        message.created_at,
        user_card(message.sender),
    )


def message_row_shape(row: MessageRow) -> dict[str, Any]:
    """A Message from a history row (`selectors.message_page`)."""
    card = card_of(
        user_id=row.sender_id,
        first_name=row.first_name,
        last_name=row.last_name,
        profile_image=row.profile_image,
    )
    return _message(
        row.id, row.message, row.room_id, row.sender_id, row.client_id, row.created_at, card
    )


def _message(
    message_id: int,
    text: str,
    room_id: int,
    sender_id: int,
    client_id: str | None,
    created_at: datetime,
    card: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": message_id,
        "message": text,
        "roomId": room_id,
        "userId": sender_id,
        "clientId": client_id,
        "createdAt": created_at.isoformat(),
        "user": card,
    }


def room_members(room: ChatRoom) -> list[dict[str, Any]] | None:
    """`[{id, firstName, lastName}]`: a direct room's two members, a support room's owner.

    Lets a client name a direct room by the other person and a support room (for staff) by its
    traveller. Free with `selectors.room_list` (annotations, owner selected); otherwise a direct
    room costs a query and a support room one unless its owner is loaded. Other kinds: None.
    """
    if room.kind == ChatRoom.Kind.DIRECT:
        if hasattr(room, "direct_member_0"):
            cards = [room.direct_member_0, getattr(room, "direct_member_1", None)]
            return [card for card in cards if card]
        members = room.participants.select_related("user").order_by("user_id")[:2]
        return [user_summary(p.user) for p in members]
    if room.kind == ChatRoom.Kind.SUPPORT and room.owner_id is not None:
        return [user_summary(room.owner)] if room.owner else []
    return None


def room_shape(room: ChatRoom, *, unread_count: int | None = None) -> dict[str, Any]:
    """A Room; `unread_count` defaults to the `unread_count` annotation of room selectors."""
    if unread_count is None:
        unread_count = getattr(room, "unread_count", 0) or 0
    last = room.last_message
    return {
        "id": room.pk,
        "name": room.name,
        "description": room.description,
        "kind": room.kind,
        "isActive": room.is_active,
        "createdAt": room.created_at.isoformat(),
        "updatedAt": room.updated_at.isoformat(),
        "unreadCount": unread_count,
        "lastMessage": message_shape(last) if last is not None and not last.is_hidden else None,
        "ownerId": room.owner_id,
        "departureId": room.departure_id,
        "awaitingStaffSince": (
            room.awaiting_staff_since.isoformat() if room.awaiting_staff_since else None
        ),
        "topic": room.topic,
        "members": room_members(room),
    }
