"""Notifications through a real daphne process, PostgreSQL and the Redis layer."""

import json
import urllib.request
from typing import Any

import pytest
from django.contrib.auth.models import User

from notifications.models import Notification
from tests.conftest import DaphneServer, session_cookie_for, token_for
from tests.e2e.wsclient import open_socket, ping, receive_type, send
from tests.factories import BookingFactory, StaffFactory, UserFactory
from tests.notifications.conftest import make_notification

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def call(server: DaphneServer, method: str, path: str, user: User, body: Any) -> Any:
    request = urllib.request.Request(
        f"{server.url}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Token {token_for(user)}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_staff_send_to_200_users_reaches_both_tabs_of_a_user(
    daphne_server: DaphneServer,
) -> None:
    staff = StaffFactory.create()
    user = UserFactory.create()
    make_notification(user.pk)  # one unread already
    others = UserFactory.create_batch(199)
    with (
        open_socket(daphne_server.ws_url, token=token_for(user)) as tab1,
        open_socket(daphne_server.ws_url, cookie=session_cookie_for(user)) as tab2,
    ):
        ping(tab1)
        ping(tab2)  # both joined the user's group
        status, body = call(
            daphne_server,
            "POST",
            "/api/notifications",
            staff,
            {
                "userIds": [user.pk, *(o.pk for o in others)],
                "type": "TOUR",
                "title": "New departure",
                "message": "Porto in May",
                "link": "/tours/",
                "data": {"tourId": 9},
            },
        )
        assert (status, body) == (201, {"created": 200})
        for tab in (tab1, tab2):
            event = receive_type(tab, "notification")
            assert event["unreadCount"] == 2
            assert event["notification"]["title"] == "New departure"
            assert event["notification"]["type"] == "TOUR"
            assert event["notification"]["isRead"] is False
            assert event["notification"]["data"] == {"tourId": 9}
            assert event["notification"]["link"] == "/tours/"


def test_mark_read_on_one_tab_updates_both(daphne_server: DaphneServer) -> None:
    user = UserFactory.create()
    first, _second, third = (make_notification(user.pk) for _ in range(3))
    with (
        open_socket(daphne_server.ws_url, token=token_for(user)) as tab1,
        open_socket(daphne_server.ws_url, token=token_for(user)) as tab2,
    ):
        ping(tab2)
        send(tab1, {"type": "mark_notifications_read", "ids": [first.pk, third.pk]})
        for tab in (tab1, tab2):
            assert receive_type(tab, "notifications_unread") == {
                "type": "notifications_unread",
                "unreadCount": 1,
            }
        send(tab2, {"type": "mark_notifications_read", "all": True})
        for tab in (tab1, tab2):
            assert receive_type(tab, "notifications_unread")["unreadCount"] == 0


def test_another_users_ids_over_the_socket_change_nothing(daphne_server: DaphneServer) -> None:
    user = UserFactory.create()
    make_notification(user.pk)
    theirs = make_notification(UserFactory.create().pk)
    with open_socket(daphne_server.ws_url, token=token_for(user)) as ws:
        send(ws, {"type": "mark_notifications_read", "ids": [theirs.pk]})
        assert receive_type(ws, "notifications_unread")["unreadCount"] == 1
    theirs.refresh_from_db()
    assert theirs.is_read is False


def test_booking_status_change_reaches_the_owners_socket(daphne_server: DaphneServer) -> None:
    staff = StaffFactory.create()
    booking = BookingFactory.create()
    with open_socket(daphne_server.ws_url, token=token_for(booking.user)) as ws:
        ping(ws)
        status, body = call(
            daphne_server, "PATCH", f"/api/bookings/{booking.pk}", staff, {"status": "CONFIRMED"}
        )
        assert status == 200 and body["status"] == "CONFIRMED"
        event = receive_type(ws, "notification")
        assert event["notification"]["type"] == "BOOKING"
        assert event["notification"]["link"] == "/bookings/"
        assert event["notification"]["data"] == {"bookingId": booking.pk, "status": "CONFIRMED"}
        assert event["unreadCount"] == 1


@pytest.mark.parametrize(
    "fields",
    [{}, {"ids": "all"}, {"ids": [0]}, {"ids": []}, {"all": "yes"}, {"ids": [1], "all": True}],
)
def test_bad_mark_read_frames_get_an_error_and_the_socket_stays_open(
    daphne_server: DaphneServer, fields: dict[str, Any]
) -> None:
    user = UserFactory.create()
    make_notification(user.pk)
    with open_socket(daphne_server.ws_url, token=token_for(user)) as ws:
        send(ws, {"type": "mark_notifications_read", **fields})
        error = receive_type(ws, "error")
        assert error["type"] == "error"
        assert error["code"] == "invalid"
        assert error["ref"] == "mark_notifications_read"
        ping(ws)
    assert Notification.objects.get(user=user).is_read is False
