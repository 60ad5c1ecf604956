"""The Notification admin: list, search, filters and the "send notification" view."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from notifications.models import Notification
from tests.factories import StaffFactory, UserFactory
from tests.notifications.conftest import make_notification

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/notifications/notification/"
SEND = "/admin/notifications/notification/send/"


@pytest.fixture
def admin_client_(db: None) -> Client:
    client = Client()
    client.force_login(StaffFactory.create(is_superuser=True))
    return client


def test_changelist_searches_filters_and_links_to_send(admin_client_: Client) -> None:
    user = UserFactory.create(username="marta")
    make_notification(user.pk, title="Your tour is confirmed")
    make_notification(user.pk, title="Flash sale", type="PROMOTION", is_read=True)
    page = admin_client_.get(CHANGELIST, {"q": "marta"})
    assert page.status_code == 200
    assert "Your tour is confirmed" in page.content.decode()
    assert SEND in page.content.decode()
    by_title = admin_client_.get(CHANGELIST, {"q": "flash"}).content.decode()
    assert "Flash sale" in by_title and "Your tour is confirmed" not in by_title
    filtered = admin_client_.get(CHANGELIST, {"type__exact": "PROMOTION", "is_read__exact": "1"})
    assert "Flash sale" in filtered.content.decode()
    assert "Your tour is confirmed" not in filtered.content.decode()
    # Creating rows directly would skip the live events: the send view is the way.
    assert admin_client_.get(f"{CHANGELIST}add/").status_code == 403


def test_send_to_chosen_users(admin_client_: Client) -> None:
    alice, bob, _carol = UserFactory.create_batch(3)
    assert admin_client_.get(SEND).status_code == 200
    response = admin_client_.post(
        SEND,
        {"users": [alice.pk, bob.pk], "type": "TOUR", "title": "New tour", "message": "Porto"},
    )
    assert response.status_code == 302
    assert sorted(Notification.objects.values_list("user_id", flat=True)) == [alice.pk, bob.pk]


def test_send_to_everyone(admin_client_: Client) -> None:
    UserFactory.create_batch(2)
    admin_client_.post(
        SEND, {"everyone": "on", "type": "SYSTEM", "title": "Maintenance", "message": "Tonight"}
    )
    assert Notification.objects.count() == User.objects.count() == 3


@pytest.mark.parametrize(
    "extra", [{}, {"everyone": "on", "users": ["USER"]}], ids=["nobody", "both"]
)
def test_send_needs_users_or_everyone(admin_client_: Client, extra: dict) -> None:
    user = UserFactory.create()
    data = {"type": "SYSTEM", "title": "t", "message": "m", **extra}
    if "users" in data:
        data["users"] = [user.pk]
    response = admin_client_.post(SEND, data)
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    assert not Notification.objects.exists()


def test_send_view_is_for_staff_only(user: User) -> None:
    client = Client()
    client.force_login(user)
    response = client.get(SEND)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
