"""The WebSocket events of this app (documented in docs/websocket.md and docs/notifications.md)."""

from typing import Any

from rest_framework.fields import DateTimeField

from notifications.models import Notification

_timestamp = DateTimeField()


def timestamp(value: Any) -> str:
    """A timestamp exactly as the REST API writes it, so events and REST rows compare equal."""
    return str(_timestamp.to_representation(value))


def notification_shape(notification: Notification, created_at: str | None = None) -> dict[str, Any]:
    """The wire Notification; `created_at` lets a bulk create format the shared time once."""
    return {
        "id": notification.pk,
        "type": notification.type,
        "title": notification.title,
        "message": notification.message,
        "isRead": notification.is_read,
        "createdAt": created_at if created_at is not None else timestamp(notification.created_at),
        "link": notification.link,
        "data": notification.data,
    }


def notification_event(shape: dict[str, Any], unread_count: int) -> dict[str, Any]:
    """`notification {notification, unreadCount}`: one new notification for its user's sockets."""
    return {"type": "notification", "notification": shape, "unreadCount": unread_count}


def unread_event(unread_count: int) -> dict[str, Any]:
    """`notifications_unread {unreadCount}`: the badge changed (read or deleted)."""
    return {"type": "notifications_unread", "unreadCount": unread_count}
