"""GET/POST/PATCH/DELETE /api/notifications (docs/notifications.md)."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from notifications.models import Notification, NotificationType
from tests.conftest import api_client_for, token_for
from tests.factories import StaffFactory, UserFactory
from tests.notifications.conftest import Sent, make_notification

pytestmark = pytest.mark.django_db

URL = "/api/notifications"
SHAPE = {"id", "type", "title", "message", "isRead", "createdAt", "link", "data"}


def ids_of(body: dict[str, Any]) -> list[int]:
    return [row["id"] for row in body["results"]]


# --- GET ------------------------------------------------------------------------------------


def test_list_is_newest_first_with_the_contract_shape(user: User) -> None:
    older = make_notification(user.pk, link="/bookings/", data={"bookingId": 3})
    newer = make_notification(user.pk, type=NotificationType.PROMOTION, is_read=True)
    make_notification(UserFactory.create().pk)  # someone else's

    response = api_client_for(user).get(URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "unreadCount", "hasMore"}
    assert ids_of(body) == [newer.pk, older.pk]
    assert body["unreadCount"] == 1
    assert body["hasMore"] is False
    row = body["results"][1]
    assert set(row) == SHAPE
    assert row["type"] == "SYSTEM"
    assert row["isRead"] is False
    assert row["link"] == "/bookings/"
    assert row["data"] == {"bookingId": 3}
    assert row["createdAt"].endswith(("Z", "+00:00"))


def test_list_filters_unread_and_type(user: User) -> None:
    unread_system = make_notification(user.pk)
    make_notification(user.pk, is_read=True)
    unread_tour = make_notification(user.pk, type=NotificationType.TOUR)
    client = api_client_for(user)

    assert ids_of(client.get(URL, {"unread": "true"}).json()) == [unread_tour.pk, unread_system.pk]
    assert ids_of(client.get(URL, {"type": "TOUR"}).json()) == [unread_tour.pk]
    assert ids_of(client.get(URL, {"unread": "true", "type": "SYSTEM"}).json()) == [
        unread_system.pk
    ]
    assert len(client.get(URL, {"unread": "false"}).json()["results"]) == 3


def test_pagination_with_before_and_limit(user: User) -> None:
    rows = [make_notification(user.pk, title=f"n{i}") for i in range(5)]
    newest_first = [row.pk for row in reversed(rows)]
    client = api_client_for(user)

    page1 = client.get(URL, {"limit": 2}).json()
    assert ids_of(page1) == newest_first[:2]
    assert page1["hasMore"] is True
    page2 = client.get(URL, {"limit": 2, "before": newest_first[1]}).json()
    assert ids_of(page2) == newest_first[2:4]
    assert page2["hasMore"] is True
    page3 = client.get(URL, {"limit": 2, "before": newest_first[3]}).json()
    assert ids_of(page3) == newest_first[4:]
    assert page3["hasMore"] is False
    # Exactly `limit` left: no further page.
    exact = client.get(URL, {"limit": 3, "before": newest_first[1]}).json()
    assert ids_of(exact) == newest_first[2:]
    assert exact["hasMore"] is False
    # A cursor older than everything, or any id at all, is fine.
    assert client.get(URL, {"before": newest_first[-1]}).json() == {
        "results": [],
        "unreadCount": 5,
        "hasMore": False,
    }
    assert ids_of(client.get(URL, {"before": 2**62}).json()) == newest_first


def test_default_limit_is_20_and_100_is_allowed(user: User) -> None:
    Notification.objects.bulk_create(
        Notification(user=user, type="SYSTEM", title="t", message="m") for _ in range(101)
    )
    client = api_client_for(user)
    default = client.get(URL).json()
    assert len(default["results"]) == 20
    assert default["hasMore"] is True
    most = client.get(URL, {"limit": 100}).json()
    assert len(most["results"]) == 100
    assert most["hasMore"] is True
    assert most["unreadCount"] == 101


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "x"},
        {"limit": -1},
        {"before": "x"},
        {"before": 0},
        {"before": 2**64},
        {"type": "NOPE"},
        {"type": "booking"},
        {"unread": "maybe"},
    ],
)
def test_bad_list_query_is_400(user: User, query: dict[str, Any]) -> None:
    response = api_client_for(user).get(URL, query)
    assert response.status_code == 400
    assert isinstance(response.json(), dict)


def test_list_query_count_does_not_grow_with_rows(user: User, django_assert_num_queries) -> None:
    Notification.objects.bulk_create(
        Notification(user=user, type="SYSTEM", title="t", message="m", data={"k": i})
        for i in range(50)
    )
    client = api_client_for(user)
    with django_assert_num_queries(2):  # the page and the unread count
        response = client.get(URL, {"limit": 50})
    assert len(response.json()["results"]) == 50


def test_list_needs_sign_in(api: APIClient) -> None:
    assert api.get(URL).status_code == 401


def test_list_with_a_token(user: User, api: APIClient) -> None:
    make_notification(user.pk)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    assert api.get(URL).json()["unreadCount"] == 1


# --- POST (staff) ---------------------------------------------------------------------------


def test_staff_send_to_users(
    staff: User, sent: Sent, django_capture_on_commit_callbacks: Any
) -> None:
    alice, bob = UserFactory.create(), UserFactory.create()
    make_notification(bob.pk)  # bob already has one unread
    body = {
        "userIds": [alice.pk, bob.pk, alice.pk],
        "type": "TOUR",
        "title": "New tour",
        "message": "Porto by boat",
        "link": "/tours/1/",
        "data": {"tourId": 1},
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(staff).post(URL, body, format="json")

    assert response.status_code == 201
    assert response.json() == {"created": 2}
    assert Notification.objects.filter(user=alice, type="TOUR").count() == 1
    events = {groups[0]: event for groups, event in sent}
    assert set(events) == {f"user.{alice.pk}", f"user.{bob.pk}"}
    assert events[f"user.{alice.pk}"]["unreadCount"] == 1
    assert events[f"user.{bob.pk}"]["unreadCount"] == 2
    event = events[f"user.{alice.pk}"]
    assert event["type"] == "notification"
    # The live notification is exactly the row the REST list shows.
    listed = api_client_for(alice).get(URL).json()["results"][0]
    assert event["notification"] == listed
    assert listed["link"] == "/tours/1/"
    assert listed["data"] == {"tourId": 1}


def test_unknown_and_inactive_user_ids_are_skipped(staff: User) -> None:
    alice = UserFactory.create()
    gone = UserFactory.create(is_active=False)
    response = api_client_for(staff).post(
        URL,
        {"userIds": [alice.pk, gone.pk, 999_999], "type": "SYSTEM", "title": "t", "message": "m"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json() == {"created": 1}
    assert list(Notification.objects.values_list("user_id", flat=True)) == [alice.pk]


def test_staff_send_to_everyone(staff: User) -> None:
    users = UserFactory.create_batch(3)
    UserFactory.create(is_active=False)
    response = api_client_for(staff).post(
        URL,
        {"all": True, "type": "SYSTEM", "title": "Maintenance", "message": "Tonight"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json() == {"created": 4}  # three users and the staff member
    assert set(Notification.objects.values_list("user_id", flat=True)) == {
        staff.pk,
        *(u.pk for u in users),
    }


def test_non_staff_may_not_send(user: User) -> None:
    response = api_client_for(user).post(
        URL, {"userIds": [user.pk], "type": "SYSTEM", "title": "t", "message": "m"}, format="json"
    )
    assert response.status_code == 403
    assert not Notification.objects.exists()


def test_anonymous_may_not_send(api: APIClient, user: User) -> None:
    response = api.post(
        URL, {"userIds": [user.pk], "type": "SYSTEM", "title": "t", "message": "m"}, format="json"
    )
    assert response.status_code == 401


GOOD = {"type": "SYSTEM", "title": "t", "message": "m"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        GOOD,  # no recipients
        {**GOOD, "userIds": []},
        {**GOOD, "userIds": [1], "all": True},
        {**GOOD, "all": False},
        {**GOOD, "all": "yes"},
        {**GOOD, "userIds": "1"},
        {**GOOD, "userIds": [0]},
        {**GOOD, "userIds": ["x"]},
        {**GOOD, "userIds": [2**64]},
        {**GOOD, "userIds": list(range(1, 10_002))},
        {**GOOD, "userIds": [1], "type": "NOPE"},
        {**GOOD, "userIds": [1], "title": ""},
        {**GOOD, "userIds": [1], "title": "x" * 201},
        {**GOOD, "userIds": [1], "title": "nul\x00"},
        {**GOOD, "userIds": [1], "message": "lone \ud800"},
        {**GOOD, "userIds": [1], "message": 5},
        {**GOOD, "userIds": [1], "data": [1, 2]},
        {**GOOD, "userIds": [1], "data": "x"},
        {**GOOD, "userIds": [1], "data": {"k": "nul\x00"}},
        {**GOOD, "userIds": [1], "data": {"nul\x00": 1}},
        {**GOOD, "userIds": [1], "data": {"a": [[[[[[[[[[[1]]]]]]]]]]]}},
        {**GOOD, "userIds": [1], "link": 7},
        [1, 2],
    ],
)
def test_bad_send_input_is_400(staff: User, body: Any) -> None:
    # json.dumps escapes lone surrogates as the JSON a client could send.
    response = api_client_for(staff).post(URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert not Notification.objects.exists()


def test_send_to_200_users_takes_a_bounded_number_of_queries(
    staff: User, sent: Sent, django_assert_max_num_queries: Any, django_capture_on_commit_callbacks
) -> None:
    def send_to(users: list[User]) -> int:
        body = {"userIds": [u.pk for u in users], "type": "SYSTEM", "title": "t", "message": "m"}
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client_for(staff).post(URL, body, format="json")
        assert response.status_code == 201
        return int(response.json()["created"])

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert send_to(UserFactory.create_batch(1)) == 1
    many = UserFactory.create_batch(200)
    sent.clear()
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert send_to(many) == 200
    assert len(one.captured_queries) <= 5  # recipients, email wishes, insert, unread counts
    assert len(sent) == 200
    assert {groups[0] for groups, _ in sent} == {f"user.{u.pk}" for u in many}


# --- PATCH ----------------------------------------------------------------------------------


def test_mark_some_read(user: User, sent: Sent, django_capture_on_commit_callbacks: Any) -> None:
    a, b, c = (make_notification(user.pk) for _ in range(3))
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(user).patch(URL, {"ids": [a.pk, b.pk]}, format="json")
    assert response.status_code == 200
    assert response.json() == {"updated": 2, "unreadCount": 1}
    assert sent == [([f"user.{user.pk}"], {"type": "notifications_unread", "unreadCount": 1})]
    # Already read: nothing changes, the count is answered again.
    again = api_client_for(user).patch(URL, {"ids": [a.pk, c.pk]}, format="json")
    assert again.json() == {"updated": 1, "unreadCount": 0}
    assert api_client_for(user).get(URL, {"unread": "true"}).json()["results"] == []


def test_mark_all_read(user: User) -> None:
    for _ in range(3):
        make_notification(user.pk)
    other = make_notification(UserFactory.create().pk)
    response = api_client_for(user).patch(URL, {"all": True}, format="json")
    assert response.json() == {"updated": 3, "unreadCount": 0}
    other.refresh_from_db()
    assert other.is_read is False
    assert api_client_for(user).get(URL).json()["unreadCount"] == 0


def test_marking_another_users_notifications_changes_and_reveals_nothing(user: User) -> None:
    mine = make_notification(user.pk)
    theirs = make_notification(UserFactory.create().pk)
    client = api_client_for(user)
    with_foreign = client.patch(URL, {"ids": [theirs.pk]}, format="json")
    missing = client.patch(URL, {"ids": [theirs.pk + 1000]}, format="json")
    assert with_foreign.status_code == missing.status_code == 200
    assert with_foreign.json() == missing.json() == {"updated": 0, "unreadCount": 1}
    theirs.refresh_from_db()
    assert theirs.is_read is False
    assert client.patch(URL, {"ids": [mine.pk, theirs.pk]}, format="json").json() == {
        "updated": 1,
        "unreadCount": 0,
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": []},
        {"all": False},
        {"ids": [1], "all": True},
        {"ids": "1"},
        {"ids": [0]},
        {"ids": [-3]},
        {"ids": [True]},
        {"ids": [2**64]},
        {"ids": [None]},
        {"ids": list(range(1, 1002))},
        {"all": "true-ish"},
        "nope",
    ],
)
def test_bad_mark_read_input_is_400(user: User, body: Any) -> None:
    make_notification(user.pk)
    response = api_client_for(user).patch(URL, body, format="json")
    assert response.status_code == 400
    assert Notification.objects.get().is_read is False


# --- DELETE ---------------------------------------------------------------------------------


def test_delete_some(user: User, sent: Sent, django_capture_on_commit_callbacks: Any) -> None:
    read = make_notification(user.pk, is_read=True)
    unread = make_notification(user.pk)
    kept = make_notification(user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(user).delete(URL, {"ids": [read.pk, unread.pk]}, format="json")
    assert response.status_code == 200
    assert response.json() == {"deleted": 2, "unreadCount": 1}
    assert sent == [([f"user.{user.pk}"], {"type": "notifications_unread", "unreadCount": 1})]
    assert list(Notification.objects.values_list("pk", flat=True)) == [kept.pk]


def test_deleting_another_users_notifications_changes_and_reveals_nothing(user: User) -> None:
    make_notification(user.pk)
    theirs = make_notification(UserFactory.create().pk)
    client = api_client_for(user)
    foreign = client.delete(URL, {"ids": [theirs.pk]}, format="json")
    missing = client.delete(URL, {"ids": [theirs.pk + 1000]}, format="json")
    assert foreign.status_code == missing.status_code == 200
    assert foreign.json() == missing.json() == {"deleted": 0, "unreadCount": 1}
    assert Notification.objects.filter(pk=theirs.pk).exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"ids": []}, {"all": True}, {"ids": ["a"]}, {"ids": [0]}, {"ids": list(range(1, 1002))}],
)
def test_bad_delete_input_is_400(user: User, body: Any) -> None:
    make_notification(user.pk)
    assert api_client_for(user).delete(URL, body, format="json").status_code == 400
    assert Notification.objects.count() == 1


def test_unread_count_follows_every_operation(staff: User) -> None:
    user = UserFactory.create()
    staff_client, client = api_client_for(staff), api_client_for(user)
    send = {"userIds": [user.pk], "type": "SYSTEM", "title": "t", "message": "m"}
    for _ in range(3):
        assert staff_client.post(URL, send, format="json").status_code == 201
    listed = client.get(URL).json()
    assert listed["unreadCount"] == 3
    first, second, third = ids_of(listed)
    assert client.patch(URL, {"ids": [first]}, format="json").json()["unreadCount"] == 2
    assert client.delete(URL, {"ids": [second]}, format="json").json()["unreadCount"] == 1
    assert client.delete(URL, {"ids": [first]}, format="json").json()["unreadCount"] == 1
    assert client.patch(URL, {"all": True}, format="json").json() == {
        "updated": 1,
        "unreadCount": 0,
    }
    assert client.get(URL).json()["unreadCount"] == 0
    assert ids_of(client.get(URL).json()) == [third]


def test_staff_mark_and_delete_only_their_own(staff: User) -> None:
    theirs = make_notification(UserFactory.create().pk)
    client = api_client_for(StaffFactory.create())
    assert client.patch(URL, {"ids": [theirs.pk]}, format="json").json()["updated"] == 0
    assert client.delete(URL, {"ids": [theirs.pk]}, format="json").json()["deleted"] == 0
