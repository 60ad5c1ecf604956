"""Helpers of the message-send tests."""

from django.conf import settings

from chat import services
from chat.models import ChatRoom
from tests.factories import StaffFactory
from travelsite import ratelimit


def fresh_bucket(name: str, subject: int) -> None:
    """An empty rate-limit bucket (user ids repeat across test runs; Redis keeps buckets)."""
    key = ratelimit._key(ratelimit.limit(name), str(subject))
    if settings.REDIS_URL:
        ratelimit._sync_redis().delete(key)
    ratelimit._memory.pop(key, None)


def lobby(name: str = "Lobby") -> ChatRoom:
    """A public room made by a staff member."""
    room, _ = services.public_room_create_or_join(user=StaffFactory.create(), name=name)
    return room
