"""GET /api/users/presence/{userId}: the Presence shape, for those who may see it."""

import datetime
from typing import Any

import pytest

from chat.models import ChatRoom
from presence.models import UserPresence
from tests.conftest import api_client_for
from tests.factories import StaffFactory, UserFactory
from tests.presence.conftest import shared_room

pytestmark = pytest.mark.django_db


def url(user_id: int) -> str:
    return f"/api/users/presence/{user_id}"


def test_a_room_mate_sees_presence_with_last_seen() -> None:
    viewer = UserFactory.create()
    other = UserFactory.create(first_name="Alice", last_name="Smith")
    shared_room(viewer, other)
    UserPresence.objects.create(
        user=other,
        is_online=False,
        last_seen_at=datetime.datetime(2030, 5, 1, 12, 0, tzinfo=datetime.UTC),
    )

    response = api_client_for(viewer).get(url(other.pk))

    assert response.status_code == 200
    assert response.json() == {
        "userId": other.pk,
        "isOnline": False,
        "lastSeenAt": "2030-05-01T12:00:00+00:00",
        "user": {"firstName": "Alice", "lastName": "Smith"},
    }


def test_a_user_who_never_connected_is_offline() -> None:
    viewer, other = UserFactory.create_batch(2)
    shared_room(viewer, other, kind=ChatRoom.Kind.DIRECT)

    body = api_client_for(viewer).get(url(other.pk)).json()

    assert body["isOnline"] is False and body["lastSeenAt"] is None


def test_an_online_user_is_online() -> None:
    viewer, other = UserFactory.create_batch(2)
    shared_room(viewer, other)
    UserPresence.objects.create(user=other, is_online=True)

    assert api_client_for(viewer).get(url(other.pk)).json()["isOnline"] is True


def test_users_sharing_no_room_are_404_like_unknown_ids() -> None:
    viewer, stranger, third = UserFactory.create_batch(3)
    shared_room(stranger, third)
    UserPresence.objects.create(user=stranger, is_online=True)
    client = api_client_for(viewer)

    hidden = client.get(url(stranger.pk))
    unknown = client.get(url(stranger.pk + 10_000))

    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == unknown.json()


def test_a_closed_room_shares_nothing() -> None:
    viewer, other = UserFactory.create_batch(2)
    shared_room(viewer, other, active=False)

    assert api_client_for(viewer).get(url(other.pk)).status_code == 404


def test_staff_see_everyone_and_users_see_themselves() -> None:
    staff = StaffFactory.create()
    user = UserFactory.create()

    assert api_client_for(staff).get(url(user.pk)).status_code == 200
    assert api_client_for(user).get(url(user.pk)).status_code == 200


@pytest.mark.parametrize("user_id", ["0", str(2**63), "99999999999999999999999"])
def test_out_of_range_ids_are_404(user_id: str) -> None:
    response = api_client_for(StaffFactory.create()).get(f"/api/users/presence/{user_id}")

    assert response.status_code == 404


def test_non_numeric_ids_are_404(api: Any) -> None:
    response = api_client_for(StaffFactory.create()).get("/api/users/presence/abc")

    assert response.status_code == 404


def test_anonymous_callers_are_refused(api: Any) -> None:
    user = UserFactory.create()

    assert api.get(url(user.pk)).status_code == 401


def test_one_query_for_the_presence_after_the_visibility_check(
    django_assert_num_queries: Any,
) -> None:
    viewer, other = UserFactory.create_batch(2)
    shared_room(viewer, other)
    client = api_client_for(viewer)

    with django_assert_num_queries(3):  # the user, the shared room, the presence row
        assert client.get(url(other.pk)).status_code == 200
