import asyncio
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from travelsite.token_auth import (
    auser_for_token,
    owner_of_token,
    user_for_token,
    users_for_tokens,
)

pytestmark = pytest.mark.django_db


def test_token_for_good_credentials(api: APIClient, user: User) -> None:
    response = api.post(
        "/api/auth/token", {"username": user.username, "password": "pass-word-123"}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=user).key}


def test_same_token_on_a_second_sign_in(api: APIClient, user: User) -> None:
    body = {"username": user.username, "password": "pass-word-123"}
    first = api.post("/api/auth/token", body, format="json").json()["token"]
    second = api.post("/api/auth/token", body, format="json").json()["token"]
    assert first == second


@pytest.mark.parametrize(
    "body",
    [
        {"username": "nobody", "password": "whatever"},
        {"username": "", "password": ""},
        {"username": "x"},
        {"password": "x"},
        {},
        {"username": ["a"], "password": {"b": 1}},
        {"username": "x" * 10_000, "password": "y"},
    ],
)
def test_bad_credentials_are_400_never_500(api: APIClient, user: User, body: dict) -> None:
    response = api.post("/api/auth/token", body, format="json")
    assert response.status_code == 400
    assert isinstance(response.json(), dict)


def test_wrong_password_is_400(api: APIClient, user: User) -> None:
    response = api.post(
        "/api/auth/token", {"username": user.username, "password": "wrong"}, format="json"
    )
    assert response.status_code == 400
    assert "detail" in response.json()


def test_inactive_user_gets_no_token(api: APIClient, user: User) -> None:
    user.is_active = False
    user.save()
    response = api.post(
        "/api/auth/token", {"username": user.username, "password": "pass-word-123"}, format="json"
    )
    assert response.status_code == 400


def test_malformed_json_is_400(api: APIClient) -> None:
    response = api.post("/api/auth/token", "{nope", content_type="application/json")
    assert response.status_code == 400


def test_token_authenticates_api_calls(api: APIClient, user: User) -> None:
    token = Token.objects.create(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/bookings").status_code == 200


@pytest.mark.parametrize("header", ["Token nope", "Token", "Bearer abc", "Token a b"])
def test_bad_token_is_401(api: APIClient, header: str) -> None:
    api.credentials(HTTP_AUTHORIZATION=header)
    assert api.get("/api/bookings").status_code == 401


def test_a_token_signs_in_its_user_as_the_orm_loads_them(api: APIClient, user: User) -> None:
    token = Token.objects.create(user=user)

    signed_in = owner_of_token(token.key)

    assert signed_in is not None
    expected = User.objects.get(pk=user.pk)
    for field in User._meta.concrete_fields:
        assert getattr(signed_in, field.attname) == getattr(expected, field.attname), field.name
    assert owner_of_token("no-such-key") is None


def test_a_token_of_an_inactive_user_is_401_and_says_so(api: APIClient, user: User) -> None:
    token = Token.objects.create(user=user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = api.get("/api/bookings")

    assert response.status_code == 401
    assert response.json()["detail"] == "User inactive or deleted."
    assert response["WWW-Authenticate"] == "Token"
    assert user_for_token(token.key) is None  # and sockets refuse it too


def test_an_unknown_token_is_401_invalid_token(api: APIClient) -> None:
    api.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = api.get("/api/bookings")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


def test_unauthenticated_api_call_is_401(api: APIClient) -> None:
    assert api.get("/api/bookings").status_code == 401


def test_body_over_one_mebibyte_is_413(api: APIClient, user: User) -> None:
    api.force_authenticate(user)
    response = api.post(
        "/api/bookings",
        '{"departureId": 1, "pad": "' + "x" * (1024 * 1024) + '"}',
        content_type="application/json",
    )
    assert response.status_code == 413


def test_profile_is_made_on_demand(user: User) -> None:
    from accounts.selectors import profile_for, user_card

    assert profile_for(user).pk == profile_for(user).pk
    user.refresh_from_db()
    assert user_card(user)["profileImage"] is None
    profile = profile_for(user)
    profile.profile_image = "https://img.example/a.png"
    profile.save()
    user.refresh_from_db()
    assert user_card(user)["profileImage"] == "https://img.example/a.png"


def test_deeply_nested_json_is_400_not_500(api: APIClient, user: User) -> None:
    api.force_authenticate(user)
    body = "[" * 50_000 + "]" * 50_000
    response = api.post("/api/bookings", body, content_type="application/json")
    assert response.status_code == 400


def test_sign_ins_together_are_one_query_each_answered_in_order(
    user: User, django_assert_num_queries: Any
) -> None:
    token = Token.objects.create(user=user)
    inactive = User.objects.create_user("inactive-owner", is_active=False)
    inactive_token = Token.objects.create(user=inactive)

    with django_assert_num_queries(1):
        users = users_for_tokens([token.key, "no-such-key", inactive_token.key, token.key])

    first, unknown, refused, again = users
    assert first is not None and again is not None and first.pk == again.pk == user.pk
    assert first is not again  # each socket gets its own User
    assert unknown is None and refused is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_sockets_signing_in_at_once_each_get_their_own_user() -> None:
    owners = [await User.objects.acreate(username=f"storm-{n}") for n in range(5)]
    keys = [(await Token.objects.acreate(user=owner)).key for owner in owners]

    signed_in = await asyncio.gather(*(auser_for_token(key) for key in [*keys, "nope"]))

    assert [user.pk if user else None for user in signed_in] == [o.pk for o in owners] + [None]
