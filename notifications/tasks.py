"""The email fallback: a notification nobody saw in time is emailed, once.

`notification_emails_schedule` runs inside `notification_create` / `notification_broadcast_all`
(one call per batch of up to BATCH_SIZE recipients). With one query it keeps the recipients
who turned email on for the type and have an address, and once the transaction commits it
enqueues ONE delayed job for the batch carrying the notification ids: a broadcast to 50,000
users makes 50 jobs, not 50,000 (django-tasks enqueues one row per job, with no bulk insert).

When the job runs (`make worker`, NOTIFICATION_EMAIL_DELAY_SECONDS later) it checks everything
again, in one query: the notification is still unread and was never emailed, its recipient is
active, has an address, is offline (no UserPresence row, or `is_online` false) and still wants
email for the type. Each email is claimed with `UPDATE ... SET emailed_at = now WHERE emailed_at
IS NULL AND NOT is_read` before it is sent, so two workers (or a job run twice) never send it
twice.
"""

import datetime
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django_tasks import task

from notifications.models import Notification, NotificationPreference
from presence.models import UserPresence

logger = logging.getLogger(__name__)

SUBJECT_PREFIX = "[Wanderly]"


class NotificationEmailError(RuntimeError):
    """Some emails of a job could not be sent (each is logged; they stay un-emailed)."""


def notification_emails_schedule(*, notifications: Sequence[Notification], type: str) -> int:
    """After commit, enqueue one delayed email job for those of `notifications` (all of `type`)
    whose recipient wants email for it; returns how many were scheduled. One query.

    Whether the recipient is offline is decided when the job runs, not now.
    """
    user_ids = {notification.user_id for notification in notifications}
    if not user_ids:
        return 0
    wanting = set(
        NotificationPreference.objects.filter(user_id__in=user_ids, type=type, email=True)
        .exclude(user__email="")
        .values_list("user_id", flat=True)
    )
    ids = [notification.pk for notification in notifications if notification.user_id in wanting]
    if ids:
        transaction.on_commit(lambda: _enqueue(ids), robust=True)
    return len(ids)


def _enqueue(notification_ids: list[int]) -> None:
    job = email_unread_notifications
    if job.get_backend().supports_defer:
        delay = datetime.timedelta(seconds=settings.NOTIFICATION_EMAIL_DELAY_SECONDS)
        job = job.using(run_after=timezone.now() + delay)
    # else: the immediate backend (development, TASKS_BACKEND=immediate) sends right away.
    job.enqueue(notification_ids)


def emailable(notifications: QuerySet[Notification]) -> QuerySet[Notification]:
    """Those of `notifications` that the fallback should email now."""
    return (
        notifications.filter(is_read=False, emailed_at__isnull=True, user__is_active=True)
        .exclude(user__email="")
        .filter(
            Exists(
                NotificationPreference.objects.filter(
                    user_id=OuterRef("user_id"), type=OuterRef("type"), email=True
                )
            )
        )
        .exclude(Exists(UserPresence.objects.filter(user_id=OuterRef("user_id"), is_online=True)))
    )


@task()
def email_unread_notifications(notification_ids: list[int]) -> int:
    """Email each of these notifications that is still emailable; returns how many were sent.

    A failed send is logged and releases its claim (the notification stays un-emailed); the
    job then fails after trying the rest, so its result shows the failure.
    """
    candidates = list(
        emailable(Notification.objects.filter(pk__in=notification_ids))
        .select_related("user")
        .order_by("pk")
    )
    sent = failed = 0
    if not candidates:
        return 0
    with mail.get_connection() as connection:  # one SMTP session for the whole batch
        for notification in candidates:
            if not _claim(notification):
                continue  # read or emailed since the query above
            try:
                _message(notification, connection=connection).send()
            except Exception:
                logger.exception("Emailing notification %s failed", notification.pk)
                Notification.objects.filter(pk=notification.pk).update(emailed_at=None)
                failed += 1
            else:
                sent += 1
    if failed:
        raise NotificationEmailError(f"{failed} of {len(candidates)} notification emails failed")
    return sent


def _claim(notification: Notification) -> bool:
    """Mark it emailed unless someone did (or it was read) meanwhile; True if this call won."""
    return (
        Notification.objects.filter(
            pk=notification.pk, emailed_at__isnull=True, is_read=False
        ).update(emailed_at=timezone.now())
        == 1
    )


def absolute_url(link: str) -> str:
    """An absolute http(s) URL for a notification's `link` (the site's home when it has none)."""
    parts = urlsplit(link)
    if parts.scheme in {"http", "https"} and parts.netloc:
        return link
    if link.startswith("/") and not link.startswith("//"):
        return f"{settings.SITE_URL}{link}"
    return f"{settings.SITE_URL}/"


def _preferences_url() -> str | None:
    try:
        return f"{settings.SITE_URL}{reverse('notification-preferences')}"
    except NoReverseMatch:
        return None


def _message(
    notification: Notification, *, connection: BaseEmailBackend
) -> mail.EmailMultiAlternatives:
    user: User = notification.user
    context = {
        "notification": notification,
        "user": user,
        "url": absolute_url(notification.link),
        "preferences_url": _preferences_url(),
        "type_label": notification.get_type_display(),
    }
    # A header may not hold a line break; titles are short single lines anyway.
    subject = f"{SUBJECT_PREFIX} {' '.join(notification.title.split())}"
    message = mail.EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("notifications/email/notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        connection=connection,
    )
    message.attach_alternative(
        render_to_string("notifications/email/notification.html", context), "text/html"
    )
    return message
