"""Chat's WebSocket frame handlers: validate the frame, call one service, answer the socket."""

from collections.abc import Sequence
from typing import Any

from channels.db import database_sync_to_async

from chat import selectors, services, store
from chat.presence_ws import room_members_presence
from chat.shapes import message_row_shape, message_shape, room_shape
from travelsite import ratelimit, realtime
from travelsite.batching import Coalescer
from travelsite.frames import FrameError, frame_ref, require_int, require_str
from travelsite.ratelimit import RateLimited
from travelsite.sockets import FrameHandler, LifecycleHook, Socket

HISTORY_PAGE = 50
SYNC_PAGE = 100


def _frame_error(error: services.ChatError, frame: dict[str, Any]) -> FrameError:
    return FrameError(error.code, str(error), ref=frame_ref(frame))


@database_sync_to_async
def _open_room(socket: Socket, room_id: int | None, name: str | None) -> dict[str, Any]:
    room = services.room_open(user=socket.user, room_id=room_id, name=name)
    room = selectors.room_of(user=socket.user, room_id=room.pk)
    messages, has_more = selectors.message_page(room=room, limit=HISTORY_PAGE)
    return {
        "type": "room_joined",
        "room": room_shape(room),
        "messages": [message_row_shape(m) for m in messages],
        "hasMore": has_more,
        "presence": room_members_presence(room_id=room.pk, viewer=socket.user),
    }


async def join_room(socket: Socket, frame: dict[str, Any]) -> None:
    room_id = require_int(frame, "roomId", optional=True)
    name = require_str(frame, "name", optional=True) if room_id is None else None
    if room_id is None and name is None:
        raise FrameError("invalid", "`roomId` or `name` is required.", ref=frame_ref(frame))
    try:
        answer = await _open_room(socket, room_id, name)
    except services.ChatError as error:
        raise _frame_error(error, frame) from None
    room_id = answer["room"]["id"]
    await socket.join_group(realtime.room_group(room_id))
    socket.joined_rooms.add(room_id)
    await socket.send_event(answer)


async def leave_room(socket: Socket, frame: dict[str, Any]) -> None:
    room_id = require_int(frame, "roomId")
    assert room_id is not None
    if room_id in socket.joined_rooms:
        socket.joined_rooms.discard(room_id)
        await socket.leave_group(realtime.room_group(room_id))
    await socket.send_event({"type": "room_left", "roomId": room_id})


async def _take_send_rate_limits(user_ids: Sequence[int]) -> list[RateLimited | None]:
    return await ratelimit.acheck_each("messages", list(user_ids))


#: Senders' rate limits, taken together in one Redis round trip, while the previous batch is
#: being stored (a store does not wait for Redis first).
_take_rate_limits = Coalescer(_take_send_rate_limits)
#: Sends that arrive together are stored together (one transaction; see messages_send), by the
#: event loop. One store at a time: two at once (each for its own rooms) halved the batches and
#: cost more CPU per message than the overlap saved (docs/performance.md).
_store_messages = Coalescer(store.messages_send)


async def send_message(socket: Socket, frame: dict[str, Any]) -> None:
    room_id = require_int(frame, "roomId")
    assert room_id is not None
    rate_limit = await _take_rate_limits.submit(socket.user.pk)
    result = await _store_messages.submit(
        services.SendRequest(
            socket.user, room_id, frame.get("message"), frame.get("clientId"), rate_limit
        )
    )
    if isinstance(result, services.ChatError):
        raise _frame_error(result, frame)
    if isinstance(result, Exception):
        raise result  # rate limited: answered by the consumer
    message, _ = result
    # Broadcast once committed; acknowledged once on disk, so that nothing acknowledged can be
    # lost in a crash (a database error here answers `unavailable`: send again, same clientId).
    await store.durable()
    await socket.send_event(
        {"type": "ack", "clientId": message.client_id, "message": message_shape(message)}
    )


async def mark_read(socket: Socket, frame: dict[str, Any]) -> None:
    room_id = require_int(frame, "roomId")
    message_id = require_int(frame, "messageId")
    assert room_id is not None and message_id is not None
    try:
        await database_sync_to_async(services.room_mark_read)(
            user=socket.user, room_id=room_id, message_id=message_id
        )
    except services.ChatError as error:
        raise _frame_error(error, frame) from None


@database_sync_to_async
def _history_after(socket: Socket, room_id: int, after_id: int) -> dict[str, Any]:
    room = selectors.visible_room(user=socket.user, room_id=room_id)
    if room is None:
        raise services.NotFound("No such room.")
    messages, has_more = selectors.message_page(room=room, after=after_id, limit=SYNC_PAGE)
    return {
        "type": "history",
        "roomId": room_id,
        "messages": [message_row_shape(m) for m in messages],
        "hasMore": has_more,
    }


async def sync(socket: Socket, frame: dict[str, Any]) -> None:
    room_id = require_int(frame, "roomId")
    after_id = frame.get("afterId", 0)
    if isinstance(after_id, bool) or not isinstance(after_id, int) or after_id < 0:
        raise FrameError(
            "invalid", "`afterId` must be a message id (0: from the start).", ref=frame_ref(frame)
        )
    assert room_id is not None
    try:
        await socket.send_event(await _history_after(socket, room_id, after_id))
    except services.ChatError as error:
        raise _frame_error(error, frame) from None


HANDLERS: dict[str, FrameHandler] = {
    "join_room": join_room,
    "leave_room": leave_room,
    "send_message": send_message,
    "mark_read": mark_read,
    "sync": sync,
}
ON_CONNECT: list[LifecycleHook] = []
ON_DISCONNECT: list[LifecycleHook] = []
