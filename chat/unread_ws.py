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
    rooms in `recount` in full).

    Work in proportion to the sockets and the counted participants, not to rooms x sockets: a
    window of 50 rooms on a process of 2,000 sockets had cost 161 ms of the event loop.
    """
    for room_id in recount:
        _known.pop(room_id, None)
    _forget_old_counts()
    rooms = list(dict.fromkeys(r for r in room_ids if isinstance(r, int)))
    if not rooms or not _local_sockets:
        return
    local_users = frozenset(_local_sockets)
    looking = _users_looking_at(set(rooms))
    now = time.monotonic()
    wanted: selectors.UnreadWanted = {}
    counted_at: dict[int, float] = {}
    for room_id in rooms:
        looking_here = looking.get(room_id)
        if looking_here is not None and len(looking_here) == len(local_users):
            continue  # every user here is looking at the room: no query, no send
        at, known = _known.get(room_id, (0.0, None))
        if now - at > RECOUNT_SECONDS:
            known, at = None, now
        wanted[room_id] = (local_users - looking_here if looking_here else local_users, known)
        counted_at[room_id] = at
    if not wanted:
        return
    # Background work: on a pool thread, not in the queue of Channels' one database thread;
    # one call (and three queries) for every room of the window.
    counted = await database_sync_to_async(
        selectors.unread_counts_advanced, thread_sensitive=False
    )(wanted)
    for room_id, known in counted.items():
        _known[room_id] = (counted_at[room_id], known)
        for user_id, (_marker, count) in known.counts.items():
            # Read now, not before the count: sockets may have joined, opened or closed since.
            sockets = _local_sockets.get(user_id, ())
            elsewhere = [s for s in sockets if room_id not in s.joined_rooms]
            if elsewhere:
                event = {"type": "unread", "roomId": room_id, "unreadCount": count}
                for socket in elsewhere:
                    await socket.send_event(event)


def _users_looking_at(rooms: set[int]) -> dict[int, set[int]]:
    """{room id: the users every one of whose sockets here has joined it}, for `rooms`: one
    pass over this process's sockets (they join few rooms each)."""
    looking: dict[int, set[int]] = defaultdict(set)
    for user_id, sockets in _local_sockets.items():
        shown: set[int] | None = None
        for socket in sockets:
            shown = socket.joined_rooms & rooms if shown is None else shown & socket.joined_rooms
            if not shown:
                break
        for room_id in shown or ():
            looking[room_id].add(user_id)
    return looking


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
