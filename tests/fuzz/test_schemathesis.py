"""API fuzzing: schemathesis turns `/api/schema/` into requests against a live daphne.

Every operation gets bounded, deterministic positive and negative cases, sent once as a
traveller and once as staff (with objects to act on: a tour, a booking, a public room with
messages, a notification). Each answer must not be a 5xx, must have a documented status code
and content type, must match its documented shape, and invalid input must be refused with 4xx.
"""

import json
import re
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlsplit

import pytest
import schemathesis
from django.contrib.auth.models import User
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from chat import services as chat_services
from notifications import services as notification_services
from tests.conftest import DaphneServer, token_for
from tests.factories import BookingFactory, DepartureFactory, StaffFactory, UserFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

#: Fixed seed and no example database: the same cases on every run, so CI is stable.
FUZZ_CONFIG = {
    "seed": 20_240_607,
    "generation": {"max-examples": 20, "deterministic": True, "database": "none"},
    "phases": {"stateful": {"enabled": False}},
}


@dataclass
class World:
    traveller: User
    staff: User
    tokens: dict[str, str]
    booking_id: int
    departure_id: int
    room_id: int


@pytest.fixture
def world(transactional_db: None, settings: Any) -> World:
    # Only this process hashes (the factories' passwords); nobody signs in with them.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    traveller = UserFactory.create()
    staff = StaffFactory.create()
    departure = DepartureFactory.create()
    booking = BookingFactory.create(user=traveller, departure=departure)
    room, _ = chat_services.public_room_create_or_join(user=staff, name="Lobby")
    chat_services.public_room_create_or_join(user=traveller, name="Lobby")
    for text in ("Hello", "Welcome aboard"):
        chat_services.message_send(user=staff, room_id=room.pk, text=text)
    chat_services.message_send(user=traveller, room_id=room.pk, text="Hi!")
    notification_services.notification_create(
        user_ids=[traveller.pk, staff.pk], type="SYSTEM", title="Welcome", message="Hello there"
    )
    return World(
        traveller=traveller,
        staff=staff,
        tokens={"traveller": token_for(traveller), "staff": token_for(staff)},
        booking_id=booking.pk,
        departure_id=departure.pk,
        room_id=room.pk,
    )


def openapi_document() -> dict[str, Any]:
    """The document `GET /api/schema/` serves, built in-process (collection needs it early)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    document: dict[str, Any] = json.loads(OpenApiJsonRenderer().render(generated))
    return document


# Loaded at import: schemathesis' fixture-based loader does not run on pytest 9 (it sets
# Node._nodeid, gone there); test_live_schema_is_the_fuzzed_one checks the live server agrees.
schema = schemathesis.openapi.from_dict(
    openapi_document(), config=schemathesis.Config.from_dict(FUZZ_CONFIG)
)


def test_live_schema_is_the_fuzzed_one(daphne_server: DaphneServer) -> None:
    assert urlsplit(daphne_server.url).hostname == "127.0.0.1"
    with urllib.request.urlopen(f"{daphne_server.url}/api/schema/?format=json", timeout=10) as r:
        assert r.status == 200
        assert json.load(r) == openapi_document()


#: What the URLs' `<int:...>` converter matches.
PATH_ID = re.compile(r"[0-9]+")


def _is_valid_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 2**63


def aim_at_world(case: schemathesis.Case, world: World, user: User) -> None:
    """Point about half of the valid ids at real objects, so more than the 404 paths run.

    Only ids that are already valid are replaced (by other valid ids), so a negative case stays
    negative and a positive one positive.
    """
    targets = {
        "booking_id": world.booking_id,
        "user_id": world.staff.pk if user == world.traveller else world.traveller.pk,
        "roomId": world.room_id,
        "departureId": world.departure_id,
    }
    containers = [case.path_parameters, case.query]
    if isinstance(case.body, dict):
        containers.append(case.body)
    for container in containers:
        if not container:
            continue
        for name, target in targets.items():
            value = container.get(name)
            if _is_valid_id(value) and value % 2 == 0:
                container[name] = target


def client_ids_made_unique(case: schemathesis.Case) -> None:
    """Give a valid `clientId` a value no earlier case used.

    A repeated clientId is answered with the message first stored under it, whatever the new
    text (the contract), so a negative case (an empty message) that happened to repeat an
    earlier positive case's clientId would be answered 200, rightly. Replays have their own
    tests (tests/chat/test_messages_api.py); here each case is a first send. An invalid
    clientId is left as it is, so a negative case stays negative.
    """
    if not isinstance(case.body, dict):
        return
    client_id = case.body.get("clientId")
    if client_id is None:
        return
    try:
        chat_services.clean_client_id(client_id)
    except chat_services.Invalid:
        return
    case.body["clientId"] = uuid.uuid4().hex


def call_and_validate(
    case: schemathesis.Case, world: World, role: str, server: DaphneServer
) -> None:
    user = world.traveller if role == "traveller" else world.staff
    key = world.tokens[role]
    # DELETE /api/auth/token revokes the key: put it back so later cases stay signed in.
    Token.objects.get_or_create(key=key, defaults={"user": user})
    aim_at_world(case, world, user)
    client_ids_made_unique(case)
    checks = CHECKS
    if not all(PATH_ID.fullmatch(str(value)) for value in (case.path_parameters or {}).values()):
        # No URL route matches (`/api/bookings/-1`): Django's own 404 page, in HTML.
        checks = [not_a_server_error, status_code_conformance, negative_data_rejection]
    case.call_and_validate(
        base_url=server.url,
        headers={"Authorization": f"Token {key}"},
        checks=checks,
        timeout=10,
    )


# One `world` per operation, shared by its examples (hypothesis warns about exactly that).
FUZZ_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_traveller(
    case: schemathesis.Case, world: World, daphne_server: DaphneServer
) -> None:
    call_and_validate(case, world, "traveller", daphne_server)


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_staff(case: schemathesis.Case, world: World, daphne_server: DaphneServer) -> None:
    call_and_validate(case, world, "staff", daphne_server)
