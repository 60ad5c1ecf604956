from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class NotificationType(models.TextChoices):
    BOOKING = "BOOKING", "Booking"
    TOUR = "TOUR", "Tour"
    PAYMENT = "PAYMENT", "Payment"
    SYSTEM = "SYSTEM", "System"
    PROMOTION = "PROMOTION", "Promotion"
    MESSAGE = "MESSAGE", "Message"


class Notification(models.Model):
    """One notice for one user; rows are written only by notifications.services."""

    Type = NotificationType

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    type = models.CharField(max_length=16, choices=NotificationType.choices)
    title = models.CharField(max_length=200)
    message = models.TextField()
    is_read = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    link = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    #: While a notification with this key is unread, another one with the same key for the same
    #: user is not created (e.g. "one unread 'new message in room 7' at a time").
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    #: When the email fallback sent it (None: never). Set by a conditional UPDATE, so a
    #: notification is emailed at most once however many workers run (notifications.tasks).
    emailed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "dedupe_key"],
                condition=Q(is_read=False, dedupe_key__isnull=False),
                name="notification_unread_dedupe",
            ),
        ]
        indexes = [
            # The bell's list: a user's notifications newest first, paged by id.
            models.Index(fields=["user", "-id"], name="notification_user_newest"),
            # The badge: count of a user's unread notifications.
            models.Index(
                fields=["user"], condition=Q(is_read=False), name="notification_user_unread"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type}: {self.title}"


class NotificationPreference(models.Model):
    """A user's choice for one notification type; no row means the defaults (in-app on)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    type = models.CharField(max_length=16, choices=NotificationType.choices)
    in_app = models.BooleanField(default=True)
    email = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "type"], name="one_preference_per_user_type")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.type}: in_app={self.in_app} email={self.email}"
