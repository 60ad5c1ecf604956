"""Writes of chat: one function per action, called alike by REST views and socket handlers.

Each checks who may do what (CONTRACT.md's room rules; what a user may not see is reported as
not found), writes in a transaction, and leaves the events to chat.events, sent on commit.
"""

import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.selectors import display_name
from chat import events, selectors, writes
from chat.models import ChatMessage, ChatRoom, ChatRoomParticipant
from notifications.models import NotificationType
from notifications.services import notification_create, notifications_mark_read_by_key
from presence.services import typing_stopped_by_messages
from travelsite import metrics, ratelimit, realtime, sql
from travelsite.sql import Rows, Statement

logger = logging.getLogger(__name__)

Kind = ChatRoom.Kind

MESSAGE_MAX_CHARS = 4000
CLIENT_ID_MAX_CHARS = 64
ROOM_NAME_MAX_CHARS = 100


class ChatError(Exception):
    """An action refused; `code` is the error frame's code, the message its detail."""

    code = "invalid"


class Invalid(ChatError):
    code = "invalid"


class NotFound(ChatError):
    code = "not_found"


class Forbidden(ChatError):
    code = "forbidden"


# --- Validation -------------------------------------------------------------------------------


def clean_message_text(text: object) -> str:
    """The text exactly as typed, if it is 1-4,000 code points once trimmed."""
    if not isinstance(text, str):
        raise Invalid("`message` must be a string.")
    if "\x00" in text:
        raise Invalid("Messages may not contain NUL characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("Messages must be valid Unicode (no lone surrogates).") from None
    length = len(text.strip())
    if length == 0:
        raise Invalid("A message cannot be empty.")
    if length > MESSAGE_MAX_CHARS:
        raise Invalid(f"Messages are limited to {MESSAGE_MAX_CHARS} characters.")
    if len(text) > 4 * MESSAGE_MAX_CHARS:
        raise Invalid("Too much surrounding whitespace.")
    return text


def clean_client_id(client_id: object) -> str | None:
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not client_id.strip():
        raise Invalid("`clientId` must be a non-empty string.")
    if len(client_id) > CLIENT_ID_MAX_CHARS or "\x00" in client_id:
        raise Invalid(f"`clientId` is limited to {CLIENT_ID_MAX_CHARS} characters.")
    try:
        client_id.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("`clientId` must be valid Unicode.") from None
    return client_id


def clean_room_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise Invalid("`name` must be a non-empty string.")
    name = name.strip()
    if len(name) > ROOM_NAME_MAX_CHARS or "\x00" in name:
        raise Invalid(f"Room names are limited to {ROOM_NAME_MAX_CHARS} characters.")
    return name


# --- Rooms ------------------------------------------------------------------------------------


def _add_participants(room: ChatRoom, user_ids: list[int] | set[int]) -> None:
    """Make users participants; in a public room, what was said before they came is not unread."""
    read_up_to = (room.last_message_id or 0) if room.kind == Kind.PUBLIC else 0
    ChatRoomParticipant.objects.bulk_create(
        [
            ChatRoomParticipant(room=room, user_id=user_id, last_read_message_id=read_up_to)
            for user_id in user_ids
        ],
        ignore_conflicts=True,
    )


def public_room_create_or_join(
    *, user: User, name: str, description: str = ""
) -> tuple[ChatRoom, bool]:
    """Join the public room called `name`; staff create it when it does not exist yet."""
    name = clean_room_name(name)
    room = ChatRoom.objects.filter(kind=Kind.PUBLIC, name=name).first()
    created = False
    if room is None:
        if not user.is_staff:
            raise Forbidden("Only staff create public rooms.")
        try:
            with transaction.atomic():
                room = ChatRoom.objects.create(
                    kind=Kind.PUBLIC, name=name, description=description[:500], created_by=user
                )
                created = True
        except IntegrityError:  # created concurrently: join it
            room = ChatRoom.objects.get(kind=Kind.PUBLIC, name=name)
    if not room.is_active:
        raise NotFound("No such room.")
    _add_participants(room, [user.pk])
    return room, created


def support_room_get_or_create(*, user: User) -> tuple[ChatRoom, bool]:
    """The caller's own support room (one per user)."""
    room = ChatRoom.objects.filter(kind=Kind.SUPPORT, owner=user).first()
    created = False
    if room is None:
        try:
            with transaction.atomic():
                room = ChatRoom.objects.create(
                    kind=Kind.SUPPORT,
                    owner=user,
                    name="Support",
                    description="Ask us anything about your trips.",
                    created_by=user,
                )
                created = True
        except IntegrityError:
            room = ChatRoom.objects.get(kind=Kind.SUPPORT, owner=user)
    _add_participants(room, [user.pk])
    return room, created


def direct_room_get_or_create(*, user: User, other_user_id: object) -> tuple[ChatRoom, bool]:
    """The one direct room of `user` and another user."""
    if isinstance(other_user_id, bool) or not isinstance(other_user_id, int) or other_user_id < 1:
        raise Invalid("`userId` must be a positive integer.")
    if other_user_id == user.pk:
        raise Invalid("A direct room needs another user.")
    if not User.objects.filter(pk=other_user_id, is_active=True).exists():
        raise NotFound("No such user.")
    low, high = sorted([user.pk, other_user_id])
    key = f"{low}:{high}"
    room = ChatRoom.objects.filter(direct_key=key).first()
    created = False
    if room is None:
        try:
            with transaction.atomic():
                room = ChatRoom.objects.create(kind=Kind.DIRECT, direct_key=key, created_by=user)
                _add_participants(room, [low, high])
                created = True
        except IntegrityError:
            room = ChatRoom.objects.get(direct_key=key)
    return room, created


def group_room_create(
    *, actor: User, name: str, description: str = "", member_ids: object = None
) -> ChatRoom:
    """Staff make a group room of chosen members (themselves included)."""
    if not actor.is_staff:
        raise Forbidden("Only staff create group rooms.")
    name = clean_room_name(name)
    if member_ids is None:
        member_ids = []
    if not isinstance(member_ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in member_ids
    ):
        raise Invalid("`memberIds` must be a list of user ids.")
    if len(member_ids) > 1000:
        raise Invalid("At most 1000 members at once.")
    existing = set(User.objects.filter(pk__in=member_ids).values_list("pk", flat=True))
    if missing := sorted(set(member_ids) - existing):
        raise Invalid(f"Unknown user ids: {missing[:10]}")
    with transaction.atomic():
        room = ChatRoom.objects.create(
            kind=Kind.GROUP, name=name, description=description[:500], created_by=actor
        )
        _add_participants(room, existing | {actor.pk})
    return room


def departure_room_sync(*, departure_id: int) -> ChatRoom:
    """Keep a departure's group room holding exactly its booked travellers and its guide."""
    from travel.models import Booking, Departure

    with transaction.atomic():
        departure = Departure.objects.select_related("tour").get(pk=departure_id)
        room, _ = ChatRoom.objects.get_or_create(
            departure=departure,
            defaults={
                "kind": Kind.GROUP,
                "name": f"{departure.tour.name} · {departure.start_date:%d %b %Y}",
                "description": f"Travellers and guide of {departure}",
            },
        )
        members = set(
            Booking.objects.filter(departure=departure)
            .exclude(status=Booking.Status.CANCELLED)
            .values_list("user_id", flat=True)
        )
        if departure.guide_id:
            members.add(departure.guide_id)
        current = set(room.participants.values_list("user_id", flat=True))
        _add_participants(room, members - current)
        room.participants.filter(user_id__in=current - members).delete()
    return room


def room_open(*, user: User, room_id: int | None = None, name: str | None = None) -> ChatRoom:
    """A room the user opens (WS `join_room`): they become a participant of what they see."""
    if room_id is not None:
        room = selectors.visible_room(user=user, room_id=room_id)
        if room is None:
            raise NotFound("No such room.")
        if room.kind in (Kind.PUBLIC, Kind.SUPPORT):
            _add_participants(room, [user.pk])
        return room
    if name is not None:
        room, _ = public_room_create_or_join(user=user, name=name)
        return room
    raise Invalid("`roomId` or `name` is required.")


# --- Messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendRequest:
    """One `send_message`: what `message_send` takes, for `messages_send`."""

    user: User
    room_id: int
    text: object
    client_id: object = None
    #: The sender's rate limit, when the caller took it already (the socket path takes it
    #: while the previous batch is being stored): None if allowed.
    rate_limit: ratelimit.RateLimited | Literal["unchecked"] | None = "unchecked"


#: What `messages_send` answers per request: (message, created) or the error it raises alone.
SendResult = tuple[ChatMessage, bool] | ChatError | ratelimit.RateLimited


def message_send(
    *, user: User, room_id: int, text: object, client_id: object = None
) -> tuple[ChatMessage, bool]:
    """Store a message and announce it; a repeated clientId returns the first, stored once."""
    (result,) = messages_send([SendRequest(user, room_id, text, client_id)])
    if isinstance(result, Exception):
        raise result
    return result


def messages_send(requests: Sequence[SendRequest]) -> list[SendResult]:
    """Store several messages at once, with the result of each as if sent alone, in order.

    Socket sends arriving together are stored by one call (chat.ws): one transaction, one lock
    per room, one insert, one update per room, instead of all of that per message. Each room's
    row is locked while its messages are inserted, so within a room ids follow commit order: a
    reader that has seen id N never later sees a new message below N (which makes `after`
    cursors and `sync` catch-up exact).

    A repeated clientId is answered with the message first stored under it, not stored or
    announced again; that holds even when the send would now be refused (rate limited, room
    closed since): what was acknowledged once stays acknowledged.

    This runs on a thread with Django's connection; chat.store runs the same steps on the event
    loop for sockets on PostgreSQL.
    """
    batch = SendBatch.checked(requests)
    if unchecked := batch.unchecked():
        batch.rate_limited(unchecked, ratelimit.check_each("messages", batch.user_ids(unchecked)))
    if len(batch.accepted()) > 1:
        # A batch's events go to the event loop together, after commit, in one wake-up; a lone
        # message's event goes at once (measured: handing it over with the rest cost fan-out
        # latency, docs/performance.md).
        with realtime.one_handover():
            _messages_store(batch)
    elif batch.accepted():
        _messages_store(batch)
    batch.answer_repeats(messages_by_client_id)
    return batch.answers()


#: {(sender id, clientId): the message stored under it}.
StoredUnder = dict[tuple[int, str], ChatMessage]


@dataclass
class SendBatch:
    """The sends of one `messages_send`, answered step by step: checked, rate limited, stored,
    and repeated clientIds acknowledged with what was stored under them before."""

    requests: Sequence[SendRequest]
    results: list[SendResult | None]
    texts: dict[int, str] = field(default_factory=dict)
    client_ids: dict[int, str | None] = field(default_factory=dict)
    #: Rate limits taken by this batch: {index: verdict}.
    verdicts: dict[int, ratelimit.RateLimited | None] = field(default_factory=dict)

    @classmethod
    def checked(cls, requests: Sequence[SendRequest]) -> "SendBatch":
        """The batch with its invalid sends answered, and rate limits taken before applied."""
        batch = cls(requests, [None] * len(requests))
        for index, request in enumerate(requests):
            try:
                batch.client_ids[index] = clean_client_id(request.client_id)
                batch.texts[index] = clean_message_text(request.text)
            except ChatError as error:
                batch.results[index] = error
                continue
            if isinstance(request.rate_limit, ratelimit.RateLimited):
                batch.results[index] = request.rate_limit
        return batch

    def unchecked(self) -> list[int]:
        """Valid sends whose rate limit is still to be taken."""
        return [
            index
            for index, request in enumerate(self.requests)
            if self.results[index] is None and request.rate_limit == "unchecked"
        ]

    def user_ids(self, indexes: Sequence[int]) -> list[str | int]:
        return [self.requests[index].user.pk for index in indexes]

    def rate_limited(
        self, indexes: Sequence[int], verdicts: Sequence[ratelimit.RateLimited | None]
    ) -> None:
        for index, verdict in zip(indexes, verdicts, strict=True):
            self.verdicts[index] = verdict
            self.results[index] = verdict

    def accepted(self) -> list[int]:
        """Sends to store: valid and not rate limited."""
        return [index for index, result in enumerate(self.results) if result is None]

    def record(self, outcome: dict[int, SendResult]) -> None:
        """The store's results (`Stored.outcome`)."""
        for index, result in outcome.items():
            self.results[index] = result

    def requests_checked(self) -> list[SendRequest]:
        """The requests with the rate limits this batch took, to be stored again elsewhere
        without taking them twice."""
        return [
            replace(request, rate_limit=self.verdicts[index]) if index in self.verdicts else request
            for index, request in enumerate(self.requests)
        ]

    def repeats(self) -> list[tuple[int, str]]:
        """(sender id, clientId) of refused sends that carry a clientId."""
        return [
            (self.requests[index].user.pk, client_id)
            for index, result in enumerate(self.results)
            if isinstance(result, Exception)
            and (client_id := self.client_ids.get(index)) is not None
        ]

    def answer_repeats(
        self, stored_under: Callable[[Sequence[tuple[int, str]]], StoredUnder]
    ) -> None:
        """A refused send that repeats a stored clientId is acknowledged with what was stored."""
        if not (keys := self.repeats()):
            return
        stored = stored_under(keys)
        for index, result in enumerate(self.results):
            client_id = self.client_ids.get(index)
            if isinstance(result, Exception) and client_id is not None:
                existing = stored.get((self.requests[index].user.pk, client_id))
                if existing is not None:
                    self.results[index] = (existing, False)

    def answers(self) -> list[SendResult]:
        return [result for result in self.results if result is not None]


@dataclass
class Announcements:
    """What a store tells, once it has committed: `send` from any thread or the event loop,
    `follow_up` (queries: the staff inbox's room, notifications) on a thread."""

    events: list[tuple[list[str], dict[str, Any]]] = field(default_factory=list)
    unread_rooms: list[int] = field(default_factory=list)
    #: (room id, user id) of senders whose typing their message ends.
    stopped_typing: list[tuple[int, int]] = field(default_factory=list)
    #: (message, the room's message before it) in rooms other than public ones.
    follow_ups: list[tuple[ChatMessage, int | None]] = field(default_factory=list)

    def send(self) -> None:
        realtime.send_each(self.events)
        for room_id in self.unread_rooms:
            events.unread_counts_changed(room_id)
        # Sending ends typing; after the messages, so the room hears the message before the stop.
        typing_stopped_by_messages(pairs=self.stopped_typing)

    def follow_up(self) -> None:
        for message, previous_id in self.follow_ups:
            try:
                events.support_message_created(message)
                notify_participants_away(message=message, previous_id=previous_id)
            except Exception:  # one failure must not keep the others' notifications back
                logger.exception("could not follow up message %s", message.pk)


@dataclass
class Stored:
    """What one store transaction did: the accepted sends' results, and what to announce."""

    outcome: dict[int, SendResult]
    announcements: Announcements


def _messages_store(batch: SendBatch) -> None:
    """Store the accepted sends (their results filled in) and announce them on commit.

    The insert does not look for clientIds stored before: a repeated one (a retry after a lost
    ack, which is rare) makes it fail, and the transaction is then run again looking them up
    first. So a new message costs no lookup.
    """
    look_up_first = False
    for _attempt in range(3):
        try:
            with transaction.atomic():
                look_up = messages_by_client_id if look_up_first else None
                stored = sql.run_steps(store_steps(batch, look_up=look_up))
                transaction.on_commit(stored.announcements.send, robust=True)
                if stored.announcements.follow_ups:
                    transaction.on_commit(stored.announcements.follow_up, robust=True)
        except IntegrityError:
            if not any(batch.client_ids[i] for i in batch.accepted()):
                raise
            look_up_first = True  # and again if another process stored one meanwhile
            continue
        batch.record(stored.outcome)
        return
    raise IntegrityError("clientId conflicts kept recurring")


def store_steps(
    batch: SendBatch, *, look_up: Callable[[Sequence[tuple[int, str]]], StoredUnder] | None
) -> Generator[Statement, Rows, Stored]:
    """The statements of one store transaction, for `sql.run_steps` or chat.store to run
    (inside a transaction); `look_up`: first look for the clientIds stored before."""
    requests, accepted, client_ids = batch.requests, batch.accepted(), batch.client_ids
    room_ids = sorted({requests[i].room_id for i in accepted})
    user_ids = sorted({requests[i].user.pk for i in accepted})
    rows = yield writes.rooms_locked(room_ids, user_ids)
    rooms, participating = writes.rooms_locked_read(rows)
    keys = [(requests[i].user.pk, c) for i in accepted if (c := client_ids[i]) is not None]
    stored = look_up(keys) if look_up is not None and keys else {}
    outcome: dict[int, SendResult] = {}
    new: list[tuple[int, ChatMessage]] = []
    first_of_key: dict[tuple[int, str], ChatMessage] = {}
    for index in accepted:
        request = requests[index]
        client_id = client_ids[index]
        key = (request.user.pk, client_id) if client_id is not None else None
        room = rooms.get(request.room_id)
        if key is not None and key in stored:
            outcome[index] = (stored[key], False)
        elif key is not None and key in first_of_key:
            outcome[index] = (first_of_key[key], False)  # repeated within this batch
        elif room is None or not selectors.room_visible_to(
            user=request.user, room=room, participant=(room.pk, request.user.pk) in participating
        ):
            outcome[index] = NotFound("No such room.")
        elif not room.is_active:
            outcome[index] = Forbidden("This room is closed.")
        else:
            message = ChatMessage(
                room=room, sender=request.user, message=batch.texts[index], client_id=client_id
            )
            new.append((index, message))
            outcome[index] = (message, True)
            if key is not None:
                first_of_key[key] = message
    announcements = Announcements()
    if new:
        now = timezone.now()
        messages = [message for _, message in new]
        touched, joining = _rooms_moving_on(requests, new, rooms, participating, now=now)
        writes_after = [writes.rooms_update_last_message(touched, now=now)]
        if joining:
            writes_after.append(writes.participants_insert(joining, now=now))
        rows = yield writes.messages_insert(messages, now=now, then=writes_after)
        writes.messages_inserted(messages, rows, now=now)
        _announce(requests, new, rooms, announcements)
    return Stored(outcome, announcements)


def _rooms_moving_on(
    requests: Sequence[SendRequest],
    created: list[tuple[int, ChatMessage]],
    rooms: dict[int, ChatRoom],
    participating: set[tuple[int, int]],
    *,
    now: datetime,
) -> tuple[list[ChatRoom], list[tuple[int, int]]]:
    """The rooms the new messages move on (their activity and support wait set; the update
    gives them their last message), and the senders to make participants (room id, user id)."""
    touched: dict[int, ChatRoom] = {}
    joining: set[tuple[int, int]] = set()
    for index, message in created:
        user = requests[index].user
        room = rooms[message.room_id]
        room.last_activity_at = now
        if room.kind == Kind.SUPPORT:
            if user.is_staff and user.pk != room.owner_id:
                room.awaiting_staff_since = None
            elif room.awaiting_staff_since is None:
                room.awaiting_staff_since = now
        touched[room.pk] = room
        if (room.pk, user.pk) not in participating:
            joining.add((room.pk, user.pk))
    return list(touched.values()), sorted(joining)


def _announce(
    requests: Sequence[SendRequest],
    created: list[tuple[int, ChatMessage]],
    rooms: dict[int, ChatRoom],
    announcements: Announcements,
) -> None:
    """Move each room's last message on to the stored messages (as the update did), and
    collect what to announce once committed."""
    stopped_typing: set[tuple[int, int]] = set()
    for index, message in created:
        user = requests[index].user
        room = rooms[message.room_id]
        metrics.CHAT_MESSAGES.inc()
        logger.info(
            "chat message stored",
            extra={
                "event": "chat.message",
                "room_id": room.pk,
                "message_id": message.pk,
                "user_id": user.pk,
            },
        )
        previous_id = room.last_message_id
        room.last_message = message
        message.sender = user
        announcements.events.append(events.message_created(message, previous_id=previous_id))
        if room.pk not in announcements.unread_rooms:
            announcements.unread_rooms.append(room.pk)
        if room.kind != Kind.PUBLIC:
            announcements.follow_ups.append((message, previous_id))
        stopped_typing.add((user.pk, room.pk))
    announcements.stopped_typing = [(r, u) for u, r in sorted(stopped_typing)]


def message_notification_key(room_id: int) -> str:
    """The dedupe key of a room's MESSAGE notification: one unread per room and user."""
    return f"chat-room:{room_id}"


def notify_participants_away(*, message: ChatMessage, previous_id: int | None) -> int:
    """A MESSAGE notification for participants who are not following the room.

    Not following: offline, or behind in the room already (their read marker is before the
    previous message, so they were not reading along). Someone reading along only gets the
    live `unread` count. At most one unread MESSAGE notification per room and user exists
    (dedupe key); reading the room marks it read, and the next message may notify again.
    Public rooms never notify (they would flood everyone).
    """
    sender = message.sender
    away = (
        ChatRoomParticipant.objects.filter(room_id=message.room_id)
        .exclude(user_id=message.sender_id)
        .filter(
            Q(last_read_message_id__lt=previous_id or 0)
            | Q(user__presence__isnull=True)
            | Q(user__presence__is_online=False)
        )
        .values_list("user_id", flat=True)
    )
    user_ids = list(away)
    if not user_ids:
        return 0
    name = display_name(sender)
    return notification_create(
        user_ids=user_ids,
        type=NotificationType.MESSAGE,
        title=f"New message from {name}",
        message=message.message.strip()[:200],
        link=f"/?room={message.room_id}",
        data={"roomId": message.room_id, "messageId": message.pk, "senderId": sender.pk},
        dedupe_key=message_notification_key(message.room_id),
    )


def messages_by_client_id(
    keys: Sequence[tuple[int, str]],
) -> StoredUnder:
    """{(sender id, clientId): message} of the messages stored under these keys (one query)."""
    if not keys:
        return {}
    match = Q()
    for sender_id, client_id in set(keys):
        match |= Q(sender_id=sender_id, client_id=client_id)
    found = ChatMessage.objects.select_related("sender__profile").filter(match)
    return {(m.sender_id, m.client_id): m for m in found if m.client_id is not None}


def room_mark_read(*, user: User, room_id: int, message_id: int) -> int:
    """Move the user's read marker in a room up to `message_id`; returns their unread count."""
    room = selectors.visible_room(user=user, room_id=room_id)
    if room is None:
        raise NotFound("No such room.")
    if not ChatMessage.objects.filter(pk=message_id, room_id=room_id).exists():
        raise NotFound("No such message in this room.")
    with transaction.atomic():
        participant, _ = ChatRoomParticipant.objects.select_for_update().get_or_create(
            room=room, user=user
        )
        if message_id > participant.last_read_message_id:
            participant.last_read_message_id = message_id
            participant.save(update_fields=["last_read_message_id"])
        count = selectors.unread_count(
            user_id=user.pk, room_id=room_id, last_read_message_id=participant.last_read_message_id
        )
        if count == 0:
            notifications_mark_read_by_key(
                user_id=user.pk, dedupe_key=message_notification_key(room_id)
            )
        events.read_marker_moved(
            user_id=user.pk,
            room_id=room_id,
            message_id=participant.last_read_message_id,
            unread_count=count,
        )
    return count


def message_hide(*, actor: User, message_id: int) -> ChatMessage:
    """Staff moderation: the message vanishes from history and the room is told."""
    if not actor.is_staff:
        raise Forbidden("Only staff moderate messages.")
    with transaction.atomic():
        message = ChatMessage.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            raise NotFound("No such message.")
        if not message.is_hidden:
            message.is_hidden = True
            message.hidden_at = timezone.now()
            message.save(update_fields=["is_hidden", "hidden_at"])
            events.message_hidden(message)
    return message


def support_room_open_about(*, user: User, topic: object) -> tuple[ChatRoom, bool]:
    """The caller's support room, about a tour or one of their bookings (its `topic`).

    `topic` is `{type: "tour" | "booking", id}`; the room keeps `{type, id, name}` so staff see
    what the traveller is asking about. An unknown tour, or a booking that is not the caller's,
    is not found (and no room is made).
    """
    from travel.models import Booking, Tour

    if not isinstance(topic, dict) or topic.get("type") not in ("tour", "booking"):
        raise Invalid('`topic` must be {"type": "tour" or "booking", "id": ...}.')
    topic_id = topic.get("id")
    if isinstance(topic_id, bool) or not isinstance(topic_id, int) or not 0 < topic_id < 2**63:
        raise Invalid("`topic.id` must be a positive integer.")
    if topic["type"] == "tour":
        tour = Tour.objects.filter(pk=topic_id).first()
        if tour is None:
            raise NotFound("No such tour.")
        name = tour.name
    else:
        booking = (
            Booking.objects.select_related("departure__tour").filter(pk=topic_id, user=user).first()
        )
        if booking is None:
            raise NotFound("No such booking.")
        name = f"{booking.departure.tour.name} · {booking.departure.start_date:%d %b %Y}"
    room, created = support_room_get_or_create(user=user)
    room.topic = {"type": topic["type"], "id": topic_id, "name": name}
    room.save(update_fields=["topic", "updated_at"])
    return room, created
