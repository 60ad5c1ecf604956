"""Fixtures of the presence tests: rooms that make users see each other, and clean Redis keys."""

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User

from chat.models import ChatRoom, ChatRoomParticipant


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def shared_room(*users: User, kind: str = ChatRoom.Kind.GROUP, active: bool = True) -> ChatRoom:
    """A room with exactly these participants (a group room: nobody else may see it)."""
    room = ChatRoom.objects.create(kind=kind, name=f"room-{uuid.uuid4().hex[:8]}", is_active=active)
    ChatRoomParticipant.objects.bulk_create(
        [ChatRoomParticipant(room=room, user=user) for user in users]
    )
    return room


def _delete_keys(url: str, pattern: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="session")
def presence_redis_clean() -> None:
    """Forget presence state left by earlier runs (user ids restart with each test database)."""
    url = os.environ.get("REDIS_URL")
    if url:
        _delete_keys(url, "presence:*")


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    prefix = f"test-presence:{uuid.uuid4().hex}:"
    yield prefix
    _delete_keys(redis_url, f"{prefix}*")


@pytest.fixture
def isolated_presence(settings: Any, redis_prefix: str) -> str:
    """Services of this test use their own Redis keys (not those the live servers use)."""
    settings.PRESENCE_REDIS_PREFIX = redis_prefix
    return redis_prefix
