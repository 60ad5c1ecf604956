"""Reads of notifications: the bell's list, unread counts and preferences."""

from collections.abc import Iterable
from typing import Any

from django.db.models import Count

from notifications.models import Notification, NotificationPreference, NotificationType

#: Types a user cannot turn off in-app (money matters).
ALWAYS_IN_APP: frozenset[str] = frozenset({NotificationType.PAYMENT})


def notification_list(
    *,
    user_id: int,
    unread_only: bool = False,
    type: str | None = None,
    before: int | None = None,
    limit: int = 20,
) -> tuple[list[Notification], bool]:
    """A page of the user's notifications, newest first, and whether older ones exist."""
    queryset = Notification.objects.filter(user_id=user_id)
    if unread_only:
        queryset = queryset.filter(is_read=False)
    if type is not None:
        queryset = queryset.filter(type=type)
    if before is not None:
        queryset = queryset.filter(id__lt=before)
    # One row more than asked tells whether there is another page.
    rows = list(queryset.order_by("-id")[: limit + 1])
    return rows[:limit], len(rows) > limit


def notification_unread_count(*, user_id: int) -> int:
    return Notification.objects.filter(user_id=user_id, is_read=False).count()


def notification_unread_counts(*, user_ids: Iterable[int]) -> dict[int, int]:
    """Unread counts of many users in one grouped query (users with none are absent)."""
    rows = (
        Notification.objects.filter(user_id__in=list(user_ids), is_read=False)
        .order_by()  # the default ordering would join the GROUP BY
        .values("user_id")
        .annotate(unread=Count("id"))
        .values_list("user_id", "unread")
    )
    return dict(rows)


def notification_preferences(*, user_id: int) -> list[dict[str, Any]]:
    """`{type, inApp, email, locked}` for every type, defaults filled in for types never set."""
    stored = {pref.type: pref for pref in NotificationPreference.objects.filter(user_id=user_id)}
    result = []
    for value in NotificationType.values:
        pref = stored.get(value)
        locked = value in ALWAYS_IN_APP
        result.append(
            {
                "type": value,
                "inApp": True if locked or pref is None else pref.in_app,
                "email": False if pref is None else pref.email,
                "locked": locked,
            }
        )
    return result
