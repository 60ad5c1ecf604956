"""GET/PUT /api/notifications/preferences."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from notifications.models import Notification
from tests.conftest import api_client_for
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

URL = "/api/notifications/preferences"


def by_type(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["type"]: row for row in body["results"]}


def test_defaults_cover_every_type(user: User) -> None:
    prefs = by_type(api_client_for(user).get(URL).json())
    assert set(prefs) == {"BOOKING", "TOUR", "PAYMENT", "SYSTEM", "PROMOTION", "MESSAGE"}
    assert all(p["inApp"] and not p["email"] for p in prefs.values())
    assert [t for t, p in prefs.items() if p["locked"]] == ["PAYMENT"]


def test_put_stores_the_listed_types(user: User) -> None:
    client = api_client_for(user)
    body = {"preferences": [{"type": "PROMOTION", "inApp": False, "email": True}]}
    assert by_type(client.put(URL, body, format="json").json())["PROMOTION"] == {
        "type": "PROMOTION",
        "inApp": False,
        "email": True,
        "locked": False,
    }
    again = {
        "preferences": [{"type": "PROMOTION", "inApp": True}, {"type": "TOUR", "inApp": False}]
    }
    prefs = by_type(client.put(URL, again, format="json").json())
    assert prefs["PROMOTION"]["inApp"] is True
    assert prefs["PROMOTION"]["email"] is False
    assert prefs["TOUR"]["inApp"] is False
    assert by_type(client.get(URL).json()) == prefs


def test_a_type_turned_off_is_not_delivered(user: User) -> None:
    api_client_for(user).put(
        URL, {"preferences": [{"type": "PROMOTION", "inApp": False}]}, format="json"
    )
    response = api_client_for(StaffFactory.create()).post(
        "/api/notifications",
        {"userIds": [user.pk], "type": "PROMOTION", "title": "Sale", "message": "-20%"},
        format="json",
    )
    assert response.json() == {"created": 0}
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"preferences": []},
        {"preferences": [{"type": "PAYMENT", "inApp": False}]},
        {"preferences": [{"type": "NOPE", "inApp": True}]},
        {"preferences": [{"type": "TOUR"}]},
        {"preferences": [{"type": "TOUR", "inApp": "no"}]},
        {"preferences": [{"type": "TOUR", "inApp": True}, {"type": "TOUR", "inApp": False}]},
        {"preferences": "TOUR"},
        {"preferences": [{"type": "TOUR", "inApp": True}] * 21},
    ],
)
def test_bad_preferences_are_400(user: User, body: dict[str, Any]) -> None:
    response = api_client_for(user).put(URL, body, format="json")
    assert response.status_code == 400
    assert all(p["inApp"] for p in api_client_for(user).get(URL).json()["results"])


def test_preferences_need_sign_in(api: APIClient) -> None:
    assert api.get(URL).status_code == 401
