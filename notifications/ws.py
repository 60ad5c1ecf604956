"""WebSocket frame handlers of this app (see travelsite/sockets.py and docs/websocket.md)."""

from typing import Any

from channels.db import database_sync_to_async

from notifications import services
from notifications.api.serializers import MAX_IDS
from travelsite.frames import FrameError, frame_ref
from travelsite.sockets import FrameHandler, LifecycleHook, Socket


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


async def handle_mark_notifications_read(socket: Socket, frame: dict[str, Any]) -> None:
    """`{ids: [...]}` or `{all: true}`; answered by `notifications_unread` to every socket."""
    ids = frame.get("ids")
    mark_all = frame.get("all", False)
    if not isinstance(mark_all, bool):
        raise FrameError("invalid", "`all` must be true or false.", ref=frame_ref(frame))
    if ids is not None and (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= MAX_IDS
        or not all(_positive_int(value) for value in ids)
    ):
        raise FrameError(
            "invalid",
            f"`ids` must be a list of 1-{MAX_IDS} positive integers.",
            ref=frame_ref(frame),
        )
    if (ids is None) == (not mark_all):
        raise FrameError("invalid", "Give either `ids` or `all: true`.", ref=frame_ref(frame))
    await database_sync_to_async(services.notifications_mark_read)(
        user=socket.user, ids=ids, all=mark_all
    )


HANDLERS: dict[str, FrameHandler] = {
    "mark_notifications_read": handle_mark_notifications_read,
}
ON_CONNECT: list[LifecycleHook] = []
ON_DISCONNECT: list[LifecycleHook] = []
