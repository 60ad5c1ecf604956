"""Reads of presence: the Presence shape for REST, room answers and the admin."""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet

from accounts.selectors import user_summary
from presence.events import iso
from presence.models import UserPresence


def presence_shape(user: User, row: UserPresence | None) -> dict[str, Any]:
    """`{userId, isOnline, lastSeenAt, user: {firstName, lastName}}`; no row: never connected."""
    return {
        "userId": user.pk,
        "isOnline": bool(row and row.is_online),
        "lastSeenAt": iso(row.last_seen_at) if row is not None else None,
        "user": {"firstName": user.first_name, "lastName": user.last_name},
    }


def presence_of(*, user: User) -> dict[str, Any]:
    return presence_shape(user, UserPresence.objects.filter(user_id=user.pk).first())


def presences_of(*, users: Iterable[User]) -> list[dict[str, Any]]:
    """The Presence of each user, in the order given, in one query."""
    users = list(users)
    rows = {r.user_id: r for r in UserPresence.objects.filter(user_id__in=[u.pk for u in users])}
    return [presence_shape(u, rows.get(u.pk)) for u in users]


def typist_summaries(*, user_ids: list[int]) -> list[dict[str, Any]]:
    """`[{id, firstName, lastName}]` of the typists, in the order given (one query)."""
    users = User.objects.filter(pk__in=user_ids).only("id", "first_name", "last_name")
    by_id = {u.pk: u for u in users}
    return [user_summary(by_id[uid]) for uid in user_ids if uid in by_id]


def presence_list(
    *, is_online: bool | None = None, search: str | None = None
) -> QuerySet[UserPresence]:
    """Known presences, online first then most recently seen (the staff list)."""
    rows = UserPresence.objects.select_related("user")
    if is_online is not None:
        rows = rows.filter(is_online=is_online)
    if search:
        rows = rows.filter(user__username__icontains=search)
    return rows.order_by("-is_online", "-last_seen_at", "user_id")
