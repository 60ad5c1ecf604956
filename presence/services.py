"""Writes of presence and typing: one function per action.

Presence: the live state is the Redis registry (presence.state); these functions change it and,
only when a user's state changes (first socket opened, last one closed or expired), persist the
transition to `UserPresence`. Heartbeats write nothing to the database. Who hears of a change is
decided by the caller (chat/presence_ws.py knows who shares a room; presence does not).

Typing: Redis only (presence.typing); nothing is written to the database.
"""

import contextlib
import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.db import IntegrityError, connection
from django.utils import timezone

from presence import conf
from presence.events import typing_event
from presence.models import UserPresence
from presence.selectors import typist_summaries
from presence.state import Transition, presence_state
from presence.typing import TypingChange, typing_state
from travelsite import metrics, realtime, sql
from travelsite.batching import Coalescer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PresenceChange:
    """A persisted transition: what `presence {userId, isOnline, lastSeenAt}` announces."""

    user_id: int
    is_online: bool
    last_seen_at: datetime.datetime | None
    version: int


# --- Presence ---------------------------------------------------------------------------------


def presence_transition_persist(*, transition: Transition) -> PresenceChange | None:
    """Store a transition; None when a newer one is already stored (this one lost a race) or
    the user is gone."""
    return presence_transitions_persist(transitions=[transition])[0]


def presence_transitions_persist(
    *, transitions: Sequence[Transition]
) -> list[PresenceChange | None]:
    """`presence_transition_persist` of each, in order, in one statement committed on its own.

    Each row is inserted, or updated only when its version is older (the insert's conflict is
    the row lock that orders racing writers). Every user's first socket and last close come
    here, so a reconnect storm after a deploy is thousands of these: the ORM's exists,
    get_or_create and save in a transaction cost five round trips and 1.3-1.5 ms of CPU each
    (docs/performance.md, eighteenth session). Of several transitions of one user only the
    newest is written (a statement updates a row once); the others answer None, as if they
    had lost the race to it.
    """
    newest: dict[int, Transition] = {}
    for transition in transitions:
        kept = newest.get(transition.user_id)
        if kept is None or transition.version > kept.version:
            newest[transition.user_id] = transition
    kept_ones = list(newest.values())
    stored: dict[int, PresenceChange] = {}
    for start in range(0, len(kept_ones), PERSIST_CHUNK):
        chunk = kept_ones[start : start + PERSIST_CHUNK]
        try:
            stored.update((change.user_id, change) for change in _upsert(chunk))
        except IntegrityError:  # a user deleted between the check and the insert
            for transition in chunk:
                with contextlib.suppress(IntegrityError):
                    stored.update((change.user_id, change) for change in _upsert([transition]))
    for change in stored.values():
        metrics.PRESENCE_CHANGES.inc()
        logger.info(
            "presence changed",
            extra={"event": "presence", "user_id": change.user_id, "online": change.is_online},
        )
    return [stored.get(t.user_id) if newest[t.user_id] is t else None for t in transitions]


#: Users per statement (five parameters each; PostgreSQL takes at most 65,535).
PERSIST_CHUNK = 1000


def _upsert(transitions: Sequence[Transition]) -> list[PresenceChange]:
    """Write transitions of distinct users; the changes stored (the others lost a race or
    their user is gone)."""
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    params: list[Any] = []
    for transition in transitions:
        at = datetime.datetime.fromtimestamp(transition.at, tz=datetime.UTC)
        seen = None if transition.is_online else ops.adapt_datetimefield_value(at)
        params += [transition.user_id, transition.is_online, seen, transition.version, now]
    timestamp = _TIMESTAMP_CAST.get(connection.vendor, "{}")
    statement = _PERSIST_TRANSITIONS.format(
        rows=", ".join(["(%s, %s, %s, %s, %s)"] * len(transitions)),
        seen=timestamp.format("v.column3"),
        now=timestamp.format("v.column5"),
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    return [PresenceChange(*_load_presence_row(row)) for row in rows]


_PRESENCE = UserPresence._meta
#: What the statement returns, in this order (the model's, and PresenceChange's).
_RETURNED = [
    field
    for field in _PRESENCE.concrete_fields
    if field.name in ("user", "is_online", "last_seen_at", "version")
]
_load_presence_row = sql.RowLoader(_RETURNED)
_USER, _ONLINE, _SEEN, _VERSION = (field.column for field in _RETURNED)
_UPDATED = next(field.column for field in _PRESENCE.concrete_fields if field.name == "updated_at")
#: PostgreSQL types a VALUES column of parameters from its values; one of NULLs only is text.
_TIMESTAMP_CAST = {"postgresql": "CAST({} AS timestamp with time zone)"}
_PERSIST_TRANSITIONS = (
    f"INSERT INTO {_PRESENCE.db_table} AS p ({_USER}, {_ONLINE}, {_SEEN}, {_VERSION}, {_UPDATED})"  # noqa: S608
    " SELECT v.column1, v.column2, {seen}, v.column4, {now} FROM (VALUES {rows}) AS v"
    f" WHERE EXISTS (SELECT 1 FROM {User._meta.db_table} u"
    f" WHERE u.{User._meta.pk.column} = v.column1)"
    f" ON CONFLICT ({_USER}) DO UPDATE SET {_ONLINE} = excluded.{_ONLINE},"
    f" {_VERSION} = excluded.{_VERSION}, {_UPDATED} = excluded.{_UPDATED},"
    f" {_SEEN} = CASE WHEN excluded.{_ONLINE} THEN p.{_SEEN} ELSE excluded.{_SEEN} END"
    f" WHERE p.{_VERSION} < excluded.{_VERSION}"
    f" RETURNING {_USER}, {_ONLINE}, {_SEEN}, {_VERSION}"
)


async def _persist_many(transitions: Sequence[Transition]) -> list[PresenceChange | None]:
    return await _persist_on_pool_thread(transitions=transitions)


#: Off Channels' one database thread (a pool thread with its own connection): a burst of
#: sockets connecting must not queue in front of every socket's sends. Versions order the rows.
#: Transitions that arrive together (a reconnect storm) are stored together.
_persist_on_pool_thread = database_sync_to_async(
    presence_transitions_persist, thread_sensitive=False
)
_persists: Coalescer[Transition, PresenceChange | None] = Coalescer(_persist_many)


async def _persist(*, transition: Transition) -> PresenceChange | None:
    return await _persists.submit(transition)


async def presence_socket_opened(*, user_id: int, socket_id: str) -> PresenceChange | None:
    """Count a newly open socket; the change when it is the user's first (they came online)."""
    transition = await presence_state().socket_opened(user_id=user_id, socket_id=socket_id)
    return await _persist(transition=transition) if transition else None


async def presence_socket_closed(*, user_id: int, socket_id: str) -> PresenceChange | None:
    """Forget a closed socket; the change when it was the user's last (they went offline)."""
    transition = await presence_state().socket_closed(user_id=user_id, socket_id=socket_id)
    return await _persist(transition=transition) if transition else None


async def presence_heartbeat(*, sockets: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Keep these open sockets alive; returns those the sweeper removed meanwhile (re-open
    them with `presence_socket_opened` if they are still open)."""
    return await presence_state().heartbeat(sockets=sockets)


async def presence_sweep() -> list[PresenceChange]:
    """Forget sockets whose process died (past their expiry): the users that went offline.

    A short lock lets one process sweep per interval; the sweep itself is atomic, so even two
    overlapping sweeps never report one transition twice.
    """
    state = presence_state()
    if not await state.try_lock(name="sweep", seconds=max(conf.sweep_interval() * 0.8, 0.1)):
        return []
    transitions = await state.sweep()
    if not transitions:
        return []
    stored = await _persist_on_pool_thread(transitions=transitions)
    return [change for change in stored if change is not None]


# --- Typing -----------------------------------------------------------------------------------


async def typing_started(*, user_id: int, room_id: int) -> TypingChange | None:
    """List the user as typing for the next 2 s; the change when they were not listed."""
    return await typing_state().start(room_id=room_id, user_id=user_id)


async def typing_stopped(*, user_id: int, room_id: int) -> TypingChange | None:
    return await typing_state().stop(room_id=room_id, user_id=user_id)


async def typing_expire() -> list[TypingChange]:
    return await typing_state().expire()


def typing_change_event(change: TypingChange) -> dict[str, object]:
    return typing_event(room_id=change.room_id, users=typist_summaries(user_ids=change.user_ids))


async def typing_announce(change: TypingChange) -> None:
    """Send the room its typists after a change."""
    event = await database_sync_to_async(typing_change_event)(change)
    await realtime.asend([realtime.room_group(change.room_id)], event)


async def _typing_stopped_and_announced(*, pairs: list[tuple[int, int]]) -> None:
    try:
        for change in await typing_state().stop_many(pairs=pairs):
            await typing_announce(change)
    except Exception:
        logger.warning("could not clear typing after %d messages", len(pairs), exc_info=True)


def typing_stopped_by_messages(*, pairs: list[tuple[int, int]]) -> None:
    """Sent messages end their senders' typing: (room id, user id) pairs, after commit.

    Sync, for chat.services.messages_send (one Redis round trip for a batch of messages);
    never raises (typing is best effort).
    """
    if not pairs or realtime.run_soon(_typing_stopped_and_announced(pairs=pairs)):
        return
    for room_id, user_id in pairs:
        try:
            change = typing_state().stop_sync(room_id=room_id, user_id=user_id)
            if change is not None:
                realtime.send([realtime.room_group(room_id)], typing_change_event(change))
        except Exception:
            logger.warning(
                "could not clear typing of user %s in room %s", user_id, room_id, exc_info=True
            )
