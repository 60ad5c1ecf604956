from typing import Any

import pytest

from notifications.models import Notification, NotificationType
from travelsite import realtime

Sent = list[tuple[list[str], dict[str, Any]]]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    """The events handed to the channel layer (run on-commit callbacks to see them)."""
    calls: Sent = []

    def fake_send_each(batch: Any, **meta: Any) -> None:
        calls.extend((list(groups), event) for groups, event in batch)

    monkeypatch.setattr(realtime, "send_each", fake_send_each)
    return calls


def make_notification(user_id: int, **fields: Any) -> Notification:
    values: dict[str, Any] = {
        "type": NotificationType.SYSTEM,
        "title": "Hello",
        "message": "Welcome aboard",
        **fields,
    }
    return Notification.objects.create(user_id=user_id, **values)


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    """Tests here make hundreds of users; the real hasher would take a minute."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
