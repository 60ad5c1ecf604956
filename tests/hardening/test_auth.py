"""Signing out, revoking tokens, origins, CSRF and the admin."""

from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import DaphneServer, token_for
from tests.e2e.wsclient import open_socket, ping, receive
from tests.factories import UserFactory


def closed_code(ws: Any) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=5)
    return closed.value.rcvd.code if closed.value.rcvd else None


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_signing_out_closes_the_sockets_of_that_session(daphne_server: DaphneServer) -> None:
    user: User = UserFactory.create()
    browser = Client()
    browser.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    with (
        open_socket(daphne_server.ws_url, cookie=cookie) as tab,
        open_socket(daphne_server.ws_url, token=token_for(user)) as api_client_socket,
    ):
        ping(tab)
        ping(api_client_socket)
        assert browser.post("/accounts/logout/").status_code == 302
        assert receive(tab)["type"] == "signed_out"
        assert closed_code(tab) == 4401
        ping(api_client_socket)  # another credential: still open


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_revoked_token_stops_working_on_rest_and_on_open_sockets(
    daphne_server: DaphneServer,
) -> None:
    user: User = UserFactory.create()
    token = token_for(user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    with open_socket(daphne_server.ws_url, token=token) as ws:
        ping(ws)
        assert api.delete("/api/auth/token").status_code == 204
        assert receive(ws)["type"] == "signed_out"
        assert closed_code(ws) == 4401
    assert not Token.objects.filter(user=user).exists()
    assert api.get("/api/bookings").status_code == 401
    with pytest.raises(InvalidStatus):
        open_socket(daphne_server.ws_url, token=token)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "origin", ["null", "http://127.0.0.1.evil.example", "https://evil.example"]
)
def test_cross_origin_sockets_are_refused(daphne_server: DaphneServer, origin: str) -> None:
    user: User = UserFactory.create()
    with pytest.raises(InvalidStatus) as refused:
        open_socket(daphne_server.ws_url, token=token_for(user), origin=origin)
    assert refused.value.response.status_code == 403


@pytest.mark.django_db
def test_csrf_is_enforced_on_session_writes(user: User) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    refused = client.patch("/api/notifications", {"all": True}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    client.get("/accounts/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    allowed = client.patch(
        "/api/notifications", {"all": True}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert allowed.status_code == 200


@pytest.mark.django_db
def test_token_writes_need_no_csrf(user: User) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    assert client.patch("/api/notifications", {"all": True}, format="json").status_code == 200


@pytest.mark.django_db
def test_admin_is_for_staff_only(user: User) -> None:
    client = Client()
    client.force_login(user)
    assert client.get("/admin/").status_code == 302  # to the admin login
    staff = UserFactory.create(is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_revoking_without_a_token_is_401(api: APIClient) -> None:
    assert api.delete("/api/auth/token").status_code == 401
