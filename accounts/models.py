from django.conf import settings
from django.db import models


class Profile(models.Model):
    """What the site keeps about a user beyond django.contrib.auth (made on demand)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    profile_image = models.URLField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"Profile of {self.user}"
