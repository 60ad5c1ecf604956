"""The notification preferences page and the staff inbox page, through Django's test client."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chat import selectors as chat_selectors
from chat import services as chat_services
from notifications import selectors as notification_selectors
from notifications.models import NotificationPreference, NotificationType
from tests.factories import BookingFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

PREFERENCES = "/notifications/preferences/"
INBOX = "/staff/inbox/"


@pytest.fixture(autouse=True)
def _quiet_realtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chat writes announce events on commit; these tests only look at pages."""
    from travelsite import realtime

    monkeypatch.setattr(realtime, "send_each", lambda *args, **kwargs: None)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def preferences_of(user: User) -> dict[str, dict[str, Any]]:
    return {p["type"]: p for p in notification_selectors.notification_preferences(user_id=user.pk)}


# --- Preferences page ---------------------------------------------------------------------------


def test_preferences_page_lists_every_type_with_both_switches(user: User) -> None:
    response = client_for(user).get(PREFERENCES)

    assert response.status_code == 200
    html = response.content.decode()
    for value in NotificationType.values:
        assert f'name="in_app_{value}"' in html
        assert f'name="email_{value}"' in html
    assert "Always on" in html


def test_preferences_page_shows_locked_types_disabled(user: User) -> None:
    response = client_for(user).get(PREFERENCES)

    rows = {row.type: row for row in response.context["rows"]}
    assert rows[NotificationType.PAYMENT].locked
    assert not rows[NotificationType.BOOKING].locked
    html = response.content.decode()
    payment_input = html.split('name="in_app_PAYMENT"', 1)[1].split(">", 1)[0]
    assert "disabled" in payment_input


def test_posting_preferences_stores_them_and_says_so(user: User) -> None:
    # given: everything in-app except promotions, email for bookings only
    form = {f"in_app_{value}": "on" for value in NotificationType.values}
    del form["in_app_PROMOTION"]
    form["email_BOOKING"] = "on"

    # when
    response = client_for(user).post(PREFERENCES, form, follow=True)

    # then
    assert response.redirect_chain == [(PREFERENCES, 302)]
    assert "preferences were saved" in response.content.decode()
    prefs = preferences_of(user)
    assert prefs["PROMOTION"]["inApp"] is False
    assert prefs["BOOKING"] == {"type": "BOOKING", "inApp": True, "email": True, "locked": False}
    assert prefs["TOUR"]["email"] is False


def test_locked_types_cannot_be_turned_off_from_the_page(user: User) -> None:
    # when every box is left unchecked
    response = client_for(user).post(PREFERENCES, {})

    # then everything else is off, but payments still arrive in-app
    assert response.status_code == 302
    prefs = preferences_of(user)
    assert prefs["PAYMENT"]["inApp"] is True
    assert prefs["BOOKING"]["inApp"] is False
    assert not NotificationPreference.objects.filter(user=user, type="PAYMENT", in_app=False)


def test_preferences_page_needs_sign_in(client: Client) -> None:
    response = client.get(PREFERENCES)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={PREFERENCES}"


# --- Staff inbox --------------------------------------------------------------------------------


def test_staff_inbox_lists_support_rooms_for_staff(staff: User) -> None:
    traveller = UserFactory.create(first_name="Ana", last_name="Lima")
    room, _ = chat_services.support_room_get_or_create(user=traveller)
    chat_services.message_send(user=traveller, room_id=room.pk, text="Is breakfast included?")

    response = client_for(staff).get(INBOX)

    assert response.status_code == 200
    (shown,) = response.context["rooms"]
    assert shown["id"] == room.pk
    assert shown["owner"]["name"] == "Ana Lima"
    assert shown["awaitingStaffSince"] is not None
    assert shown["lastMessage"]["message"] == "Is breakfast included?"
    assert 'id="inbox-rooms"' in response.content.decode()


@pytest.mark.parametrize("who", ["traveller", "anonymous"])
def test_staff_inbox_is_not_for_others(who: str, client: Client, user: User) -> None:
    if who == "traveller":
        response = client_for(user).get(INBOX)
        assert response.status_code == 404
    else:
        response = client.get(INBOX)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={INBOX}"


def test_inbox_orders_waiting_rooms_first_oldest_wait_first(staff: User) -> None:
    travellers = UserFactory.create_batch(3)
    rooms = [chat_services.support_room_get_or_create(user=t)[0] for t in travellers]
    for traveller, room in zip(travellers, rooms, strict=True):
        chat_services.message_send(user=traveller, room_id=room.pk, text="Hello?")
    # the first room gets its answer: it is no longer waiting
    chat_services.message_send(user=staff, room_id=rooms[0].pk, text="Hi!")

    ordered = [room.pk for room in chat_selectors.support_rooms_inbox()]

    assert ordered == [rooms[1].pk, rooms[2].pk, rooms[0].pk]


def test_inbox_bookings_of_a_traveller_for_staff_only(staff: User, user: User) -> None:
    booking = BookingFactory.create(user=user)
    BookingFactory.create()  # someone else's
    url = f"/staff/inbox/users/{user.pk}/bookings"

    response = client_for(staff).get(url)

    assert response.status_code == 200
    (shown,) = response.json()["results"]
    assert shown["id"] == booking.pk
    assert shown["tour"]["name"] == booking.departure.tour.name
    assert client_for(UserFactory.create()).get(url).status_code == 404


def test_header_links_to_preferences_and_staff_inbox(staff: User, user: User) -> None:
    staff_page = client_for(staff).get(PREFERENCES).content.decode()
    user_page = client_for(user).get(PREFERENCES).content.decode()

    assert f'href="{INBOX}"' in staff_page
    assert f'href="{INBOX}"' not in user_page
    assert f'href="{PREFERENCES}"' in user_page


def test_admin_index_links_to_the_staff_inbox() -> None:
    admin = StaffFactory.create(is_superuser=True)

    response = client_for(admin).get("/admin/")

    assert response.status_code == 200
    assert f'href="{INBOX}"' in response.content.decode()
