from django.conf import settings
from django.db import models
from django.db.models import Q


class ChatRoom(models.Model):
    class Kind(models.TextChoices):
        PUBLIC = "public", "Public"
        GROUP = "group", "Tour group"
        SUPPORT = "support", "Support"
        DIRECT = "direct", "Direct"

    name = models.CharField(max_length=100, blank=True)
    description = models.CharField(max_length=500, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PUBLIC)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    #: The traveller a support room belongs to (one support room per user).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="owned_rooms",
    )
    #: "<smaller user id>:<larger user id>" for a direct room: one room per pair.
    direct_key = models.CharField(max_length=50, null=True, blank=True, editable=False)  # noqa: DJ001
    #: The departure whose travellers and guide a group room holds.
    departure = models.OneToOneField(
        "travel.Departure",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="chat_room",
    )
    last_message = models.ForeignKey(
        "ChatMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    #: When a traveller's support message began waiting for a staff answer (None: answered).
    awaiting_staff_since = models.DateTimeField(null=True, blank=True)
    #: Support rooms: what the traveller last asked about, `{type: "tour"|"booking", id, name}`.
    topic = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    #: Last message (or creation) time: the order of a user's room list.
    last_activity_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(kind="public"), name="unique_public_room_name"
            ),
            models.UniqueConstraint(
                fields=["owner"], condition=Q(kind="support"), name="one_support_room_per_user"
            ),
            models.UniqueConstraint(fields=["direct_key"], name="one_direct_room_per_pair"),
        ]
        indexes = [
            models.Index(
                fields=["awaiting_staff_since"],
                condition=Q(kind="support", awaiting_staff_since__isnull=False),
                name="support_waiting_idx",
            )
        ]

    def __str__(self) -> str:
        return self.name or f"{self.get_kind_display()} room #{self.pk}"


class ChatRoomParticipant(models.Model):
    room = models.ForeignKey(ChatRoom, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_participations"
    )
    joined_at = models.DateTimeField(auto_now_add=True)
    #: Id of the last message this user has read in the room (0: none).
    last_read_message_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="one_participation_per_user")
        ]
        indexes = [models.Index(fields=["user", "room"], name="participant_user_room_idx")]

    def __str__(self) -> str:
        return f"{self.user} in {self.room}"


class ChatMessage(models.Model):
    """A message; within a room, a larger id is a later message (see services.message_send)."""

    room = models.ForeignKey(ChatRoom, on_delete=models.CASCADE, related_name="messages")
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages"
    )
    message = models.TextField()
    #: The sender's idempotency key: a retried send with the same key is stored once.
    client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)
    is_hidden = models.BooleanField(default=False)
    hidden_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "client_id"],
                condition=Q(client_id__isnull=False),
                name="one_message_per_client_id",
            )
        ]
        indexes = [
            # History pages and unread counts: an index range scan from a cursor.
            models.Index(
                fields=["room", "id"], condition=Q(is_hidden=False), name="message_room_visible_idx"
            ),
            models.Index(fields=["created_at"], name="message_created_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} in {self.room_id}"
