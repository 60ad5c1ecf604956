"""The wire shapes of presence and typing events (CONTRACT.md, "WebSocket")."""

from datetime import datetime
from typing import Any

from presence.models import UserPresence

PRESENCE = "presence"
TYPING = "typing"


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def presence_event(
    *, user_id: int, is_online: bool, last_seen_at: datetime | None
) -> dict[str, Any]:
    """`presence {userId, isOnline, lastSeenAt}`."""
    return {
        "type": PRESENCE,
        "userId": user_id,
        "isOnline": is_online,
        "lastSeenAt": iso(last_seen_at),
    }


def presence_event_of(row: UserPresence) -> dict[str, Any]:
    return presence_event(
        user_id=row.user_id, is_online=row.is_online, last_seen_at=row.last_seen_at
    )


def typing_event(*, room_id: int, users: list[dict[str, Any]]) -> dict[str, Any]:
    """`typing {roomId, users: [{id, firstName, lastName}]}`: everyone typing there now."""
    return {"type": TYPING, "roomId": room_id, "users": users}
