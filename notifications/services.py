"""Writes of notifications: creating (to chosen users or everyone), reading, deleting, preferences.

Every write runs in a transaction and its events leave through `travelsite.realtime` once it
commits: each recipient's sockets get `notification {notification, unreadCount}`, and a user
who reads or deletes gets `notifications_unread {unreadCount}` on all their sockets.
"""

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from notifications import events, selectors, tasks
from notifications.models import Notification, NotificationPreference, NotificationType
from travelsite import metrics, realtime

logger = logging.getLogger(__name__)

#: Recipients handled per INSERT (and per unread-count query): bounded statements and memory.
BATCH_SIZE = 1000
TITLE_MAX = 200
#: How often a create whose dedupe key raced with another create is retried.
DEDUPE_RETRIES = 3


class NotificationError(ValueError):
    """Arguments the service will not act on (the message says why)."""


@dataclass(frozen=True)
class PreferenceInput:
    type: str
    in_app: bool
    email: bool


def _check(type: str, title: str) -> None:
    if type not in NotificationType.values:
        raise NotificationError(f"type must be one of {', '.join(NotificationType.values)}.")
    if not title or len(title) > TITLE_MAX:
        raise NotificationError(f"title must be 1-{TITLE_MAX} characters.")


def _recipients(
    users: QuerySet[User], *, type: str, critical: bool, dedupe_key: str | None
) -> QuerySet[User]:
    """Active users among `users` who want this type in-app and lack an unread duplicate."""
    users = users.filter(is_active=True)
    if not critical and type not in selectors.ALWAYS_IN_APP:
        users = users.exclude(
            Exists(
                NotificationPreference.objects.filter(
                    user_id=OuterRef("pk"), type=type, in_app=False
                )
            )
        )
    if dedupe_key is not None:
        users = users.exclude(
            Exists(
                Notification.objects.filter(
                    user_id=OuterRef("pk"), dedupe_key=dedupe_key, is_read=False
                )
            )
        )
    return users


def _create_batch(
    users: QuerySet[User],
    *,
    type: str,
    title: str,
    message: str,
    link: str,
    data: dict[str, Any],
    dedupe_key: str | None,
    critical: bool,
) -> list[int]:
    """Insert one row per recipient among `users` (one INSERT) and queue their events.

    Returns the ids of the users who got one. With a dedupe key, a create racing another
    with the same key hits the unique constraint: the batch is redone without those users.
    """
    for attempt in range(DEDUPE_RETRIES):
        recipient_ids = list(
            _recipients(users, type=type, critical=critical, dedupe_key=dedupe_key)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not recipient_ids:
            return []
        now = timezone.now()
        rows = [
            Notification(
                user_id=user_id,
                type=type,
                title=title,
                message=message,
                link=link,
                data=data,
                dedupe_key=dedupe_key,
                created_at=now,
            )
            for user_id in recipient_ids
        ]
        if dedupe_key is None:
            created = Notification.objects.bulk_create(rows)
            break
        try:
            with transaction.atomic():
                created = Notification.objects.bulk_create(rows)
            break
        except IntegrityError:
            if attempt == DEDUPE_RETRIES - 1:
                raise
    else:  # pragma: no cover - the loop always breaks or raises
        return []

    # The email fallback for recipients who want it: one delayed job per batch, on commit.
    tasks.notification_emails_schedule(notifications=created, type=type)
    unread = selectors.notification_unread_counts(user_ids=recipient_ids)
    created_at = events.timestamp(now)
    realtime.send_each_on_commit(
        [
            (
                [realtime.user_group(notification.user_id)],
                events.notification_event(
                    events.notification_shape(notification, created_at),
                    unread.get(notification.user_id, 0),
                ),
            )
            for notification in created
        ],
        counts_as="notification",
    )
    metrics.NOTIFICATIONS_CREATED.inc(len(created))
    logger.info(
        "notifications created",
        extra={"event": "notifications.created", "type": type, "count": len(created)},
    )
    return recipient_ids


def notification_create(
    *,
    user_ids: Sequence[int],
    type: str,
    title: str,
    message: str,
    link: str = "",
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    critical: bool = False,
) -> int:
    """Notify the given users; returns how many notifications were created.

    Unknown and inactive user ids are skipped, as are users who turned this type off in-app
    (unless `critical`: cancellations and payments always arrive) and, with a `dedupe_key`,
    users who still have an unread notification with that key. The query count depends on
    the number of batches of BATCH_SIZE recipients, not on the number of recipients.
    """
    unique_ids = sorted(set(user_ids))
    batches = (unique_ids[i : i + BATCH_SIZE] for i in range(0, len(unique_ids), BATCH_SIZE))
    return _create_in_batches(
        batches,
        type=type,
        title=title,
        message=message,
        link=link,
        data=data,
        dedupe_key=dedupe_key,
        critical=critical,
    )


def notification_broadcast_all(
    *,
    type: str,
    title: str,
    message: str,
    link: str = "",
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    critical: bool = False,
) -> int:
    """Notify every active user (same rules as notification_create), in batches by user id."""
    return _create_in_batches(
        _active_user_id_batches(),
        type=type,
        title=title,
        message=message,
        link=link,
        data=data,
        dedupe_key=dedupe_key,
        critical=critical,
    )


def _active_user_id_batches() -> Iterator[list[int]]:
    """Every active user's id, BATCH_SIZE at a time (keyset pages: no OFFSET)."""
    last_id = 0
    while True:
        batch = list(
            User.objects.filter(is_active=True, pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:BATCH_SIZE]
        )
        if not batch:
            return
        yield batch
        if len(batch) < BATCH_SIZE:
            return
        last_id = batch[-1]


def _create_in_batches(
    batches: Iterable[list[int]],
    *,
    type: str,
    title: str,
    message: str,
    link: str,
    data: dict[str, Any] | None,
    dedupe_key: str | None,
    critical: bool,
) -> int:
    """One transaction; per batch of user ids, one bulk insert and its events (on commit)."""
    _check(type, title)
    created = 0
    with transaction.atomic(savepoint=False):
        for batch in batches:
            created += len(
                _create_batch(
                    User.objects.filter(pk__in=batch),
                    type=type,
                    title=title,
                    message=message,
                    link=link,
                    data=data if data is not None else {},
                    dedupe_key=dedupe_key,
                    critical=critical,
                )
            )
    return created


def _announce_unread(user: User) -> int:
    unread = selectors.notification_unread_count(user_id=user.pk)
    realtime.send_on_commit([realtime.user_group(user.pk)], events.unread_event(unread))
    return unread


def notifications_mark_read(
    *, user: User, ids: Iterable[int] | None = None, all: bool = False
) -> tuple[int, int]:
    """Mark the user's notifications read (those of `ids`, or all); returns (updated, unread).

    Ids of other users' notifications are ignored, exactly like ids that do not exist.
    Every socket of the user hears the new unread count, even when nothing changed (the
    WebSocket `mark_notifications_read` frame is answered this way).
    """
    if all == (ids is not None):
        raise NotificationError("Give either ids or all, not both.")
    with transaction.atomic(savepoint=False):
        queryset = Notification.objects.filter(user_id=user.pk, is_read=False)
        if not all:
            queryset = queryset.filter(id__in=list(ids or []))
        updated = queryset.update(is_read=True)
        metrics.NOTIFICATIONS_READ.inc(updated)
        return updated, _announce_unread(user)


def notifications_delete(*, user: User, ids: Iterable[int]) -> tuple[int, int]:
    """Delete the user's notifications among `ids`; returns (deleted, unread)."""
    with transaction.atomic(savepoint=False):
        deleted, _ = Notification.objects.filter(user_id=user.pk, id__in=list(ids)).delete()
        return deleted, _announce_unread(user)


def notification_preferences_set(
    *, user: User, preferences: Sequence[PreferenceInput]
) -> list[dict[str, Any]]:
    """Store the user's choices for the given types; returns all their preferences."""
    for pref in preferences:
        if pref.type not in NotificationType.values:
            raise NotificationError(f"Unknown notification type {pref.type!r}.")
        if pref.type in selectors.ALWAYS_IN_APP and not pref.in_app:
            raise NotificationError(f"{pref.type} notifications cannot be turned off in-app.")
    if len({pref.type for pref in preferences}) != len(preferences):
        raise NotificationError("Each type may appear once.")
    with transaction.atomic():
        NotificationPreference.objects.bulk_create(
            [
                NotificationPreference(
                    user_id=user.pk, type=pref.type, in_app=pref.in_app, email=pref.email
                )
                for pref in preferences
            ],
            update_conflicts=True,
            unique_fields=["user", "type"],
            update_fields=["in_app", "email"],
        )
    return selectors.notification_preferences(user_id=user.pk)


def notifications_mark_read_by_key(*, user_id: int, dedupe_key: str) -> int:
    """Mark read the user's unread notification with `dedupe_key` (e.g. a chat room's).

    Used when the thing it announced has been seen elsewhere (the room was read); the badge on
    every socket of the user follows. Returns how many changed (0 or 1).
    """
    with transaction.atomic(savepoint=False):
        updated = Notification.objects.filter(
            user_id=user_id, dedupe_key=dedupe_key, is_read=False
        ).update(is_read=True)
        if updated:
            unread = selectors.notification_unread_count(user_id=user_id)
            realtime.send_on_commit([realtime.user_group(user_id)], events.unread_event(unread))
    return updated
