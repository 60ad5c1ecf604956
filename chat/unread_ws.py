"""Live `unread` counts: each process tells its own sockets that are not showing the room.

When messages arrive in a room, the process that stored them announces the room to every
process once per window (chat/events.py, group UNREAD_ROOMS_GROUP). Each process then looks at
its own signed-in sockets: the users with a socket that has not joined that room get their
count, from one query for just those users, on just those sockets. A room whose participants
here are all looking at it (the usual case in a busy room) costs no query and no send, where
pushing to every participant's user group cost a send per participant per window.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat import events, selectors
from travelsite.sockets import LifecycleHook, Socket

logger = logging.getLogger(__name__)

#: user id -> this process's signed-in sockets of that user.
_local_sockets: dict[int, set[Socket]] = defaultdict(set)
_listeners: dict[asyncio.AbstractEventLoop, "asyncio.Task[None]"] = {}


async def socket_opened(socket: Socket) -> None:
    _local_sockets[socket.user.pk].add(socket)
    _ensure_listener()


async def socket_closed(socket: Socket) -> None:
    sockets = _local_sockets.get(socket.user.pk)
    if sockets is not None:
        sockets.discard(socket)
        if not sockets:
            del _local_sockets[socket.user.pk]


def _ensure_listener() -> None:
    loop = asyncio.get_running_loop()
    listener = _listeners.get(loop)
    if listener is None or listener.done():
        for old_loop in [other for other in _listeners if other.is_closed()]:
            del _listeners[old_loop]  # tests run many loops
        _listeners[loop] = loop.create_task(_listen())


async def _listen() -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    channel = await layer.new_channel("unread.")
    await layer.group_add(events.UNREAD_ROOMS_GROUP, channel)
    try:
        while True:
            message = await layer.receive(channel)
            try:
                await tell_local_sockets(message.get("rooms", []))
            except Exception:
                logger.exception("could not send unread counts of rooms %s", message.get("rooms"))
    finally:
        with contextlib.suppress(Exception):
            await layer.group_discard(events.UNREAD_ROOMS_GROUP, channel)


async def tell_local_sockets(room_ids: list[Any]) -> None:
    """Send `unread` for each room to this process's sockets not joined to it."""
    for room_id in room_ids:
        if not isinstance(room_id, int):
            continue
        waiting = {
            user_id: [s for s in sockets if room_id not in s.joined_rooms]
            for user_id, sockets in _local_sockets.items()
        }
        waiting = {user_id: sockets for user_id, sockets in waiting.items() if sockets}
        if not waiting:
            continue
        # Background work: on a pool thread, not in the queue of Channels' one database thread.
        counts = await database_sync_to_async(
            selectors.unread_counts_for_room, thread_sensitive=False
        )(room_id=room_id, user_ids=sorted(waiting))
        for user_id, count in counts.items():
            event = {"type": "unread", "roomId": room_id, "unreadCount": count}
            for socket in waiting[user_id]:
                if room_id not in socket.joined_rooms:  # it may have joined meanwhile
                    await socket.send_event(event)


ON_CONNECT: list[LifecycleHook] = [socket_opened]
ON_DISCONNECT: list[LifecycleHook] = [socket_closed]
