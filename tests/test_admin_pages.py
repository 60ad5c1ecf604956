"""Admin pages the issues ask for: booking status changes notify, staff read presence."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from notifications.models import Notification
from presence.models import UserPresence
from tests.factories import BookingFactory, UserFactory
from travel.models import Booking

# Transactional: the owner's notification is made when the status change commits.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    return client


def test_changing_a_booking_status_in_the_admin_notifies_its_owner(admin_client: Client) -> None:
    booking = BookingFactory.create()
    page = admin_client.get(f"/admin/travel/booking/{booking.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data["status"] = Booking.Status.CONFIRMED
    response = admin_client.post(f"/admin/travel/booking/{booking.pk}/change/", data)
    assert response.status_code == 302, response.content[:500]
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    (notification,) = Notification.objects.filter(user=booking.user, type="BOOKING")
    assert notification.data["status"] == "CONFIRMED"


def test_the_admin_bulk_action_changes_status_and_notifies_each_owner(admin_client: Client) -> None:
    bookings = [BookingFactory.create(), BookingFactory.create()]
    response = admin_client.post(
        "/admin/travel/booking/",
        {"action": "mark_paid", "_selected_action": [b.pk for b in bookings]},
    )
    assert response.status_code == 302
    assert set(Booking.objects.values_list("status", flat=True)) == {Booking.Status.PAID}
    assert Notification.objects.filter(type="BOOKING").count() == 2


def test_staff_read_who_is_online_and_filter_it(admin_client: Client) -> None:
    online: User = UserFactory.create(username="online-olga")
    offline: User = UserFactory.create(username="offline-otto")
    UserPresence.objects.create(user=online, is_online=True)
    UserPresence.objects.create(user=offline, is_online=False, last_seen_at=timezone.now())
    everyone = admin_client.get("/admin/presence/userpresence/").content.decode()
    assert "online-olga" in everyone
    assert "offline-otto" in everyone
    only_online = admin_client.get("/admin/presence/userpresence/", {"is_online__exact": "1"})
    assert "online-olga" in only_online.content.decode()
    assert "offline-otto" not in only_online.content.decode()
    # read-only: nobody edits presence by hand
    row = UserPresence.objects.get(user=online)
    change = admin_client.post(f"/admin/presence/userpresence/{row.pk}/change/", {"is_online": ""})
    assert change.status_code == 403 or UserPresence.objects.get(pk=row.pk).is_online


def test_travellers_cannot_open_the_presence_list() -> None:
    client = Client()
    client.force_login(UserFactory.create())
    assert client.get("/admin/presence/userpresence/").status_code == 302  # to the admin login
