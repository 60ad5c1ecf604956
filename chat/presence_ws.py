"""Presence and typing on the socket: presence's state joined to chat's "who shares a room".

The presence app keeps the state (Redis) and persists transitions; it cannot know who should
hear of them, because "users sharing a room" is chat's knowledge and presence never imports
chat. This module decides the audiences and runs the per-process background work.

Per process (started lazily with its first socket, on its event loop):

- **Heartbeat**: one task refreshes the expiry of every socket this process holds, in one
  pipeline every `PRESENCE_HEARTBEAT_SECONDS` (15 s; sockets expire after 45 s). A socket the
  sweeper removed meanwhile (the loop stalled past its expiry) is registered again.
- **Sweeper**: every `PRESENCE_SWEEP_INTERVAL_SECONDS` (5 s) the process that gets a short Redis
  lock removes sockets past their expiry (their process died); the removal is one atomic script,
  so each user going offline is reported once, by one process. 45 + 5 s < 60 s.
- **Broadcast coalescing**: transitions are not sent at once but collected for
  `PRESENCE_BROADCAST_DELAY_SECONDS` (200 ms), keeping only each user's latest (highest version).
  A flush then costs two queries to find, for all the changed users at once, the *online*
  non-staff users sharing an active room with each, one group send per recipient carrying all
  the changes it should hear (each still its own `presence` frame), deduplicated across rooms,
  plus one send per changed user to the staff group (every staff socket joins it). So a user in
  500 rooms with 10 online room-mates costs 11 sends, N room-mates coming online together cost
  about 2N sends (not N²), and a burst of N transitions of one user inside the window costs at
  most one event. Sends run concurrently in chunks so a large audience still arrives within the
  1 s budget.
- **Typing expiry**: every 250 ms the process removes typists past their 2 s window with one
  atomic script (only one process gets each removal, so exactly one announces it) and sends the
  room its new typists.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.db.models import F
from redis.exceptions import RedisError

from chat.models import ChatRoomParticipant
from chat.selectors import visible_room
from presence import conf
from presence.events import presence_event
from presence.selectors import presences_of
from presence.services import (
    PresenceChange,
    presence_heartbeat,
    presence_socket_closed,
    presence_socket_opened,
    presence_sweep,
    typing_announce,
    typing_expire,
    typing_started,
    typing_stopped,
)
from travelsite import ratelimit, realtime
from travelsite.frames import FrameError, frame_ref, require_int
from travelsite.sockets import FrameHandler, LifecycleHook, Socket

logger = logging.getLogger(__name__)

#: Every staff socket: staff see everyone's presence (one send reaches them all).
STAFF_GROUP = realtime.STAFF_GROUP
#: At most this many room members' presence in a `room_joined` answer (online ones first).
ROOM_PRESENCE_LIMIT = 200
HEARTBEAT_CHUNK = 1000

T = TypeVar("T")


@dataclass
class _Process:
    """What this process holds: its sockets, its typists, its pending broadcasts, its tasks."""

    loop: asyncio.AbstractEventLoop | None = None
    #: socket id (channel name) -> user id, for every signed-in socket of this process.
    sockets: dict[str, int] = field(default_factory=dict)
    #: socket id -> rooms it sent `typing_start` to (cleared on disconnect).
    typing_rooms: dict[str, set[int]] = field(default_factory=dict)
    pending: dict[int, PresenceChange] = field(default_factory=dict)
    flush: asyncio.Task[None] | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


_process = _Process()


# --- Audiences (chat's knowledge) ------------------------------------------------------------


def presence_audiences(*, user_ids: Iterable[int]) -> dict[int, set[int]]:
    """{user id: the online, non-staff users sharing an active room with them} (two queries).

    Staff are left out: they hear every change through STAFF_GROUP.
    """
    user_ids = list(user_ids)
    rooms_of: dict[int, set[int]] = defaultdict(set)
    for user_id, room_id in ChatRoomParticipant.objects.filter(
        user_id__in=user_ids, room__is_active=True
    ).values_list("user_id", "room_id"):
        rooms_of[user_id].add(room_id)
    all_rooms = set().union(*rooms_of.values()) if rooms_of else set()
    members_of: dict[int, set[int]] = defaultdict(set)
    if all_rooms:
        for room_id, member_id in ChatRoomParticipant.objects.filter(
            room_id__in=all_rooms,
            user__is_staff=False,
            user__is_active=True,
            user__presence__is_online=True,
        ).values_list("room_id", "user_id"):
            members_of[room_id].add(member_id)
    return {
        user_id: set().union(*(members_of[r] for r in rooms_of[user_id])) - {user_id}
        for user_id in user_ids
    }


def presence_visible_to(*, viewer: User, user_id: int) -> bool:
    """Whose presence a user may see: their own, anyone sharing an active room; staff: all."""
    if viewer.is_staff or viewer.pk == user_id:
        return True
    return ChatRoomParticipant.objects.filter(
        user_id=user_id, room__is_active=True, room__participants__user_id=viewer.pk
    ).exists()


def room_members_presence(*, room_id: int, viewer: User) -> list[dict[str, Any]]:
    """The Presence of a room's other members (online first, at most ROOM_PRESENCE_LIMIT)."""
    members = (
        User.objects.filter(chat_participations__room_id=room_id)
        .exclude(pk=viewer.pk)
        .order_by(F("presence__is_online").desc(nulls_last=True), "pk")
        .only("id", "first_name", "last_name")[:ROOM_PRESENCE_LIMIT]
    )
    return presences_of(users=members)


# --- Broadcasting presence -------------------------------------------------------------------


def _queue(change: PresenceChange | None) -> None:
    """Broadcast `change` with the next flush (a later change of the same user replaces it)."""
    if change is None:
        return
    queued = _process.pending.get(change.user_id)
    if queued is None or change.version > queued.version:
        _process.pending[change.user_id] = change
    if _process.flush is None or _process.flush.done():
        _process.flush = asyncio.get_running_loop().create_task(_flush_later())


async def _flush_later() -> None:
    await asyncio.sleep(conf.broadcast_delay())
    batch = list(_process.pending.values())
    _process.pending.clear()
    _process.flush = None  # changes arriving while this batch is sent start the next one
    try:
        await presence_broadcast(batch)
    except Exception:
        logger.exception("presence broadcast of %d changes failed", len(batch))


async def presence_broadcast(changes: list[PresenceChange]) -> None:
    """Send each change to the users sharing a room with its user, and to staff.

    Each recipient gets all its changes in one channel-layer send (each still its own
    `presence` frame), so N room-mates coming online together cost N sends, not N². Each
    change is encoded once, whichever sends carry it (N encodes, not N²: 2,000 room-mates
    back after a deploy would otherwise be four million).
    """
    if not changes:
        return
    audiences = await database_sync_to_async(presence_audiences, thread_sensitive=False)(
        user_ids=[c.user_id for c in changes]
    )
    texts = {
        change.user_id: realtime.encode(
            presence_event(
                user_id=change.user_id,
                is_online=change.is_online,
                last_seen_at=change.last_seen_at,
            )
        )
        for change in changes
    }
    inbox: dict[int, list[str]] = defaultdict(list)
    for user_id, text in texts.items():
        for recipient in sorted(audiences.get(user_id, ())):
            inbox[recipient].append(text)
    await realtime.asend_messages(
        [
            (realtime.user_group(recipient), realtime.layer_message_of_texts(inbox[recipient]))
            for recipient in sorted(inbox)
        ]
        # Staff hear everyone's changes (but not their own: exclude_user), one send per change.
        + [
            (STAFF_GROUP, realtime.layer_message_of_texts([text], exclude_user=user_id))
            for user_id, text in texts.items()
        ]
    )


# --- Background work of this process ---------------------------------------------------------


async def _every(interval: Callable[[], float], step: Callable[[], Awaitable[None]]) -> None:
    failing = False
    while True:
        await asyncio.sleep(interval())
        try:
            await step()
            failing = False
        except Exception:
            if not failing:  # once per outage, not every 250 ms
                logger.warning("presence background step %s failed", step.__name__, exc_info=True)
            failing = True


async def heartbeat_step() -> None:
    held = [(user_id, socket_id) for socket_id, user_id in _process.sockets.items()]
    for start in range(0, len(held), HEARTBEAT_CHUNK):
        missing = await presence_heartbeat(sockets=held[start : start + HEARTBEAT_CHUNK])
        for user_id, socket_id in missing:
            if _process.sockets.get(socket_id) != user_id:
                continue  # closed since
            _queue(await presence_socket_opened(user_id=user_id, socket_id=socket_id))
            if _process.sockets.get(socket_id) != user_id:
                # It closed while being registered again: its close may have come first.
                _queue(await presence_socket_closed(user_id=user_id, socket_id=socket_id))


async def sweep_step() -> None:
    for change in await presence_sweep():
        _queue(change)


async def typing_step() -> None:
    for change in await typing_expire():
        await typing_announce(change)


def _ensure_background() -> None:
    """Start this process's heartbeat, sweeper and typing expiry (once per event loop)."""
    loop = asyncio.get_running_loop()
    if _process.loop is loop and all(not task.done() for task in _process.tasks):
        return
    if _process.loop is not loop:
        # A new loop (tests): what the old one held is gone with it.
        for task in _process.tasks:
            with contextlib.suppress(RuntimeError):
                task.cancel()
        _process.sockets.clear()
        _process.typing_rooms.clear()
        _process.pending.clear()
        _process.flush = None
    _process.loop = loop
    _process.tasks = [
        loop.create_task(_every(conf.heartbeat_interval, heartbeat_step)),
        loop.create_task(_every(conf.sweep_interval, sweep_step)),
        loop.create_task(_every(conf.typing_check_interval, typing_step)),
    ]


# --- Lifecycle hooks -------------------------------------------------------------------------


async def socket_subscribing(socket: Socket) -> None:
    if socket.user.is_staff:
        await socket.join_group(STAFF_GROUP)


async def socket_opened(socket: Socket) -> None:
    _ensure_background()
    user_id = socket.user.pk
    _process.sockets[socket.channel_name] = user_id
    _queue(await presence_socket_opened(user_id=user_id, socket_id=socket.channel_name))


async def socket_closed(socket: Socket) -> None:
    user_id = socket.user.pk
    _process.sockets.pop(socket.channel_name, None)
    for room_id in _process.typing_rooms.pop(socket.channel_name, set()):
        try:
            change = await typing_stopped(user_id=user_id, room_id=room_id)
            if change is not None:
                await typing_announce(change)
        except Exception:
            logger.warning("could not clear typing of user %s in room %s", user_id, room_id)
    _queue(await presence_socket_closed(user_id=user_id, socket_id=socket.channel_name))


# --- Frame handlers --------------------------------------------------------------------------


async def _typing_room(socket: Socket, frame: dict[str, Any]) -> int:
    """The frame's room, if the user may see it (else `not_found`, as for no such room)."""
    room_id = require_int(frame, "roomId")
    assert room_id is not None
    if room_id not in socket.joined_rooms:
        room = await database_sync_to_async(visible_room)(user=socket.user, room_id=room_id)
        if room is None:
            raise FrameError("not_found", "No such room.", ref=frame_ref(frame))
    return room_id


async def _redis(action: Awaitable[T], frame: dict[str, Any]) -> T:
    try:
        return await action
    except (RedisError, OSError):
        logger.warning("redis unavailable for %s", frame.get("type"), exc_info=True)
        raise FrameError("unavailable", "Try again shortly.", ref=frame_ref(frame)) from None


async def typing_start(socket: Socket, frame: dict[str, Any]) -> None:
    room_id = await _typing_room(socket, frame)
    await ratelimit.acheck("typing", socket.user.pk)
    _process.typing_rooms.setdefault(socket.channel_name, set()).add(room_id)
    change = await _redis(typing_started(user_id=socket.user.pk, room_id=room_id), frame)
    if change is not None:
        await typing_announce(change)


async def typing_stop(socket: Socket, frame: dict[str, Any]) -> None:
    room_id = await _typing_room(socket, frame)
    rooms = _process.typing_rooms.get(socket.channel_name)
    if rooms is not None:
        rooms.discard(room_id)
    change = await _redis(typing_stopped(user_id=socket.user.pk, room_id=room_id), frame)
    if change is not None:
        await typing_announce(change)


HANDLERS: dict[str, FrameHandler] = {"typing_start": typing_start, "typing_stop": typing_stop}
ON_SUBSCRIBE: list[LifecycleHook] = [socket_subscribing]
ON_CONNECT: list[LifecycleHook] = [socket_opened]
ON_DISCONNECT: list[LifecycleHook] = [socket_closed]
