"""A booking's status change tells its owner (PATCH /api/bookings/{id})."""

from typing import Any

import pytest
from django.contrib.auth.models import User

from notifications.models import Notification, NotificationPreference, NotificationType
from tests.conftest import api_client_for
from tests.factories import BookingFactory
from tests.notifications.conftest import Sent

pytestmark = pytest.mark.django_db


def test_status_change_creates_one_booking_notification_for_the_owner(
    staff: User, sent: Sent, django_capture_on_commit_callbacks: Any
) -> None:
    booking = BookingFactory.create()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(staff).patch(
            f"/api/bookings/{booking.pk}", {"status": "CONFIRMED"}, format="json"
        )
    assert response.status_code == 200

    notification = Notification.objects.get()
    assert notification.user_id == booking.user_id
    assert notification.type == NotificationType.BOOKING
    assert notification.link == "/bookings/"
    assert notification.data == {"bookingId": booking.pk, "status": "CONFIRMED"}
    assert "confirmed" in notification.title.lower()
    ((groups, event),) = sent
    assert groups == [f"user.{booking.user_id}"]
    assert event["notification"]["type"] == "BOOKING"
    assert event["unreadCount"] == 1


def test_same_status_again_notifies_nobody(staff: User) -> None:
    booking = BookingFactory.create()
    client = api_client_for(staff)
    for _ in range(2):
        client.patch(f"/api/bookings/{booking.pk}", {"status": "PAID"}, format="json")
    client.patch(f"/api/bookings/{booking.pk}", {"status": "PENDING"}, format="json")
    assert Notification.objects.count() == 2


def test_refused_status_change_notifies_nobody(user: User) -> None:
    booking = BookingFactory.create(user=user)
    response = api_client_for(user).patch(
        f"/api/bookings/{booking.pk}", {"status": "CONFIRMED"}, format="json"
    )
    assert response.status_code == 403
    assert not Notification.objects.exists()


def test_cancellation_arrives_even_when_booking_notices_are_off(staff: User) -> None:
    booking = BookingFactory.create()
    NotificationPreference.objects.create(
        user=booking.user, type=NotificationType.BOOKING, in_app=False
    )
    client = api_client_for(staff)
    client.patch(f"/api/bookings/{booking.pk}", {"status": "CONFIRMED"}, format="json")
    assert not Notification.objects.exists()
    client.patch(f"/api/bookings/{booking.pk}", {"status": "CANCELLED"}, format="json")
    assert Notification.objects.get().data["status"] == "CANCELLED"
