from django.conf import settings
from django.db import models


class UserPresence(models.Model):
    """A user's last known presence, written only when it changes (not per heartbeat).

    The live truth is in Redis (presence.state); this row is what REST, the admin and a socket
    joining a room read. A user without a row never connected: offline.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presence"
    )
    is_online = models.BooleanField(default=False)
    #: When the user last went offline (None: never).
    last_seen_at = models.DateTimeField(null=True, blank=True)
    #: The Redis transition counter of the state stored here: a late write of an older
    #: transition (two processes racing to the database) never overwrites a newer one.
    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["is_online", "last_seen_at"], name="presence_online_idx")]

    def __str__(self) -> str:
        return f"{self.user} {'online' if self.is_online else 'offline'}"
