"""The wire shapes of chat (CONTRACT.md "Shapes"): one definition for REST and WebSocket."""

from typing import Any

from accounts.selectors import user_card, user_summary
from chat.models import ChatMessage, ChatRoom


def message_shape(message: ChatMessage) -> dict[str, Any]:
    """A Message; expects `sender__profile` selected (else it costs queries)."""
    return {
        "id": message.pk,
        "message": message.message,
        "roomId": message.room_id,
        "userId": message.sender_id,
        "clientId": message.client_id,
        "createdAt": message.created_at.isoformat(),
        "user": user_card(message.sender),
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
