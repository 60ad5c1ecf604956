"""notifications.services: bulk creation, dedupe, preferences, events on commit."""

from typing import Any

import pytest
from django.db import transaction

from notifications import services
from notifications.models import Notification, NotificationPreference, NotificationType
from tests.factories import UserFactory
from tests.notifications.conftest import Sent, make_notification

pytestmark = pytest.mark.django_db


def create(user_ids: list[int], **fields: Any) -> int:
    values: dict[str, Any] = {"type": NotificationType.SYSTEM, "title": "t", "message": "m"}
    return services.notification_create(user_ids=user_ids, **{**values, **fields})


def test_events_are_sent_only_after_commit(sent: Sent, django_capture_on_commit_callbacks) -> None:
    user = UserFactory.create()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert create([user.pk]) == 1
        assert sent == []  # nothing before the commit
    assert len(callbacks) == 1
    ((groups, event),) = sent
    assert groups == [f"user.{user.pk}"]
    assert event["type"] == "notification"
    assert event["unreadCount"] == 1
    assert event["notification"]["id"] == Notification.objects.get().pk


def test_nothing_is_sent_when_the_transaction_rolls_back(
    sent: Sent, django_capture_on_commit_callbacks
) -> None:
    user = UserFactory.create()

    def create_then_fail() -> None:
        with transaction.atomic():
            create([user.pk])
            raise RuntimeError("rolled back")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        create_then_fail()
    assert sent == []
    assert not Notification.objects.exists()


def test_unread_duplicate_is_not_created_twice() -> None:
    alice, bob = UserFactory.create(), UserFactory.create()
    assert create([alice.pk], dedupe_key="room:7") == 1
    assert create([alice.pk, bob.pk], dedupe_key="room:7") == 1  # only bob's is new
    assert Notification.objects.filter(user=alice).count() == 1
    # Once read, the key is free again.
    services.notifications_mark_read(user=alice, all=True)
    assert create([alice.pk], dedupe_key="room:7") == 1
    assert Notification.objects.filter(user=alice).count() == 2
    # Without a key nothing is deduplicated.
    assert create([alice.pk]) == create([alice.pk]) == 1


def test_a_dedupe_race_retries_without_the_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = UserFactory.create(), UserFactory.create()
    make_notification(alice.pk, dedupe_key="k")
    real = services._recipients
    calls = []

    def racing(users: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        # The first look misses alice's row, as if another create had just committed it.
        return real(users, **{**kwargs, "dedupe_key": None if len(calls) == 1 else "k"})

    monkeypatch.setattr(services, "_recipients", racing)
    assert create([alice.pk, bob.pk], dedupe_key="k") == 1
    assert len(calls) == 2
    assert Notification.objects.filter(user=alice).count() == 1
    assert Notification.objects.filter(user=bob, dedupe_key="k").count() == 1


def test_batches_cover_every_recipient(
    monkeypatch: pytest.MonkeyPatch, sent: Sent, django_capture_on_commit_callbacks
) -> None:
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    users = UserFactory.create_batch(5)
    make_notification(users[0].pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert create([u.pk for u in users]) == 5
    counts = {groups[0]: event["unreadCount"] for groups, event in sent}
    assert counts == {f"user.{u.pk}": 2 if u == users[0] else 1 for u in users}


def test_broadcast_reaches_every_active_user_in_batches(
    monkeypatch: pytest.MonkeyPatch, sent: Sent, django_capture_on_commit_callbacks
) -> None:
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    users = UserFactory.create_batch(5)
    UserFactory.create(is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        created = services.notification_broadcast_all(
            type=NotificationType.SYSTEM, title="Maintenance", message="Tonight"
        )
    assert created == 5
    assert sorted(Notification.objects.values_list("user_id", flat=True)) == [u.pk for u in users]
    assert len(sent) == 5


def test_users_who_turned_a_type_off_are_skipped_unless_critical() -> None:
    quiet, loud = UserFactory.create(), UserFactory.create()
    NotificationPreference.objects.create(user=quiet, type=NotificationType.TOUR, in_app=False)
    assert create([quiet.pk, loud.pk], type=NotificationType.TOUR) == 1
    assert create([quiet.pk], type=NotificationType.SYSTEM) == 1  # other types still arrive
    assert create([quiet.pk], type=NotificationType.TOUR, critical=True) == 1
    assert Notification.objects.filter(user=quiet, type=NotificationType.TOUR).count() == 1


def test_payments_always_arrive_in_app() -> None:
    user = UserFactory.create()
    NotificationPreference.objects.create(user=user, type=NotificationType.PAYMENT, in_app=False)
    assert create([user.pk], type=NotificationType.PAYMENT) == 1
    with pytest.raises(services.NotificationError):
        services.notification_preferences_set(
            user=user,
            preferences=[services.PreferenceInput(type="PAYMENT", in_app=False, email=True)],
        )


@pytest.mark.parametrize("fields", [{"type": "NOPE"}, {"title": ""}, {"title": "x" * 201}], ids=str)
def test_invalid_arguments_are_refused(fields: dict[str, Any]) -> None:
    user = UserFactory.create()
    with pytest.raises(services.NotificationError):
        create([user.pk], **fields)


def test_mark_read_needs_ids_or_all() -> None:
    user = UserFactory.create()
    with pytest.raises(services.NotificationError):
        services.notifications_mark_read(user=user)
    with pytest.raises(services.NotificationError):
        services.notifications_mark_read(user=user, ids=[1], all=True)


def test_no_recipients_creates_nothing(sent: Sent, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        assert create([]) == 0
        assert create([987_654]) == 0
    assert sent == []
