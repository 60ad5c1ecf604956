"""Live `unread` counts: each process tells its own sockets that are not showing the room.

When messages arrive in a room, the process that stored them announces the room to every
process once per window (chat/events.py, group UNREAD_ROOMS_GROUP). Each process then looks at
its own signed-in sockets: the users with a socket that has not joined that room get their
count, from one query for just those users, on just those sockets. A room whose participants
here are all looking at it (the usual case in a busy room) costs no query and no send, where
pushing to every participant's user group cost a send per participant per window.

Counts are advanced, not recounted: the process keeps, per room, the counts it last sent and
the message they were counted through, and reads only the new messages and the read markers
(selectors.unread_counts_advanced). A hide announces the room for a full recount, and what is
kept is recounted in full at least every `RECOUNT_SECONDS` anyway (messages deleted through
the admin, or with their sender's account, announce nothing).
"""

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat import events, selectors
from travelsite.sockets import LifecycleHook, Socket

logger = logging.getLogger(__name__)

#: user id -> this process's signed-in sockets of that user.
_local_sockets: dict[int, set[Socket]] = defaultdict(set)
#: room id -> (when counted in full, the counts last sent from here).
_known: dict[int, tuple[float, selectors.RoomUnread]] = {}
RECOUNT_SECONDS = 60.0
_forgotten_at = 0.0
_listeners: dict[asyncio.AbstractEventLoop, "tuple[asyncio.Task[None], asyncio.Future[None]]"] = {}


async def socket_opened(socket: Socket) -> None:
    """Count the socket in, once this loop hears the announcements (only the first waits)."""
    _local_sockets[socket.user.pk].add(socket)
    await asyncio.shield(_listening())


async def socket_closed(socket: Socket) -> None:
    sockets = _local_sockets.get(socket.user.pk)
    if sockets is not None:
        sockets.discard(socket)
        if not sockets:
            del _local_sockets[socket.user.pk]


def _listening() -> "asyncio.Future[None]":
    """Done once this loop's listener is subscribed to the announcements (started if need be)."""
    loop = asyncio.get_running_loop()
    listener = _listeners.get(loop)
    if listener is None or listener[0].done():
        for old_loop in [other for other in _listeners if other.is_closed()]:
            del _listeners[old_loop]  # tests run many loops
        subscribed: asyncio.Future[None] = loop.create_future()
        listener = _listeners[loop] = (loop.create_task(_listen(subscribed)), subscribed)
    return listener[1]


async def _listen(subscribed: "asyncio.Future[None]") -> None:
    layer = get_channel_layer()
    if layer is None:
        subscribed.set_result(None)
        return
    try:
        channel = await layer.new_channel("unread.")
        await layer.group_add(events.UNREAD_ROOMS_GROUP, channel)
    except Exception as error:  # the socket that waits is closed as unavailable; the next retries
        subscribed.set_exception(error)
        return
    except BaseException:
        subscribed.cancel()
        raise
    subscribed.set_result(None)
    try:
        while True:
            message = await layer.receive(channel)
            try:
                await tell_local_sockets(message.get("rooms", []), message.get("recount", []))
            except Exception:
                logger.exception("could not send unread counts of rooms %s", message.get("rooms"))
    finally:
        with contextlib.suppress(Exception):
            await layer.group_discard(events.UNREAD_ROOMS_GROUP, channel)


async def tell_local_sockets(room_ids: Sequence[Any], recount: Sequence[Any] = ()) -> None:
    """Send `unread` for each room to this process's sockets not joined to it (counting the
    rooms in `recount` in full)."""
    for room_id in recount:
        _known.pop(room_id, None)
    _forget_old_counts()
    waiting_in: dict[int, dict[int, list[Socket]]] = {}
    for room_id in dict.fromkeys(r for r in room_ids if isinstance(r, int)):
        waiting = {
            user_id: [s for s in sockets if room_id not in s.joined_rooms]
            for user_id, sockets in _local_sockets.items()
        }
        if waiting := {user_id: sockets for user_id, sockets in waiting.items() if sockets}:
            waiting_in[room_id] = waiting
    if not waiting_in:
        return
    now = time.monotonic()
    wanted: selectors.UnreadWanted = {}
    counted_at: dict[int, float] = {}
    for room_id, waiting in waiting_in.items():
        at, known = _known.get(room_id, (0.0, None))
        if now - at > RECOUNT_SECONDS:
            known, at = None, now
        wanted[room_id] = (sorted(waiting), known)
        counted_at[room_id] = at
    # Background work: on a pool thread, not in the queue of Channels' one database thread;
    # one call (and three queries) for every room of the window.
    counted = await database_sync_to_async(
        selectors.unread_counts_advanced, thread_sensitive=False
    )(wanted)
    for room_id, known in counted.items():
        _known[room_id] = (counted_at[room_id], known)
        waiting = waiting_in[room_id]
        for user_id, (_marker, count) in known.counts.items():
            event = {"type": "unread", "roomId": room_id, "unreadCount": count}
            for socket in waiting[user_id]:
                if room_id not in socket.joined_rooms:  # it may have joined meanwhile
                    await socket.send_event(event)


def _forget_old_counts() -> None:
    """Drop what would be recounted anyway (rooms that went quiet), at most once a minute."""
    global _forgotten_at
    now = time.monotonic()
    if now - _forgotten_at < RECOUNT_SECONDS:
        return
    _forgotten_at = now
    for room_id in [r for r, (at, _) in _known.items() if now - at > RECOUNT_SECONDS]:
        del _known[room_id]


#: Before the handshake ends: a socket counted in after it could miss a count.
ON_SUBSCRIBE: list[LifecycleHook] = [socket_opened]
ON_CONNECT: list[LifecycleHook] = []
ON_DISCONNECT: list[LifecycleHook] = [socket_closed]
