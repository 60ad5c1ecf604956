"""Room rules of CONTRACT.md, through the REST API."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from chat import services
from chat.models import ChatRoom, ChatRoomParticipant
from tests.conftest import api_client_for
from tests.factories import BookingFactory, DepartureFactory, StaffFactory, UserFactory
from travel.models import Booking

pytestmark = pytest.mark.django_db

ROOM_FIELDS = {
    "id",
    "name",
    "description",
    "kind",
    "isActive",
    "createdAt",
    "updatedAt",
    "unreadCount",
    "lastMessage",
}


def post_room(client: APIClient, body: dict[str, Any]) -> Any:
    return client.post("/api/chat/rooms", body, format="json")


# --- public -------------------------------------------------------------------------------------


def test_staff_create_a_public_room_201_then_200(staff: User) -> None:
    client = api_client_for(staff)
    created = post_room(client, {"name": "Lobby", "description": "Say hi"})
    assert created.status_code == 201
    body = created.json()
    assert set(body) >= ROOM_FIELDS
    assert body["kind"] == "public"
    assert body["name"] == "Lobby"
    assert body["description"] == "Say hi"
    assert body["unreadCount"] == 0
    assert body["lastMessage"] is None
    again = post_room(client, {"name": "Lobby", "kind": "public"})
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]


def test_traveller_joins_a_public_room_by_name(staff: User, user: User) -> None:
    room_id = post_room(api_client_for(staff), {"name": "Lobby"}).json()["id"]
    joined = post_room(api_client_for(user), {"name": "Lobby"})
    assert joined.status_code == 200
    assert joined.json()["id"] == room_id
    assert ChatRoomParticipant.objects.filter(room_id=room_id, user=user).exists()


def test_traveller_cannot_create_a_public_room(user: User) -> None:
    assert post_room(api_client_for(user), {"name": "Mine"}).status_code == 403
    assert not ChatRoom.objects.exists()


# --- support ------------------------------------------------------------------------------------


def test_support_room_is_one_per_user(user: User) -> None:
    client = api_client_for(user)
    first = post_room(client, {"kind": "support"})
    second = post_room(client, {"kind": "support"})
    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["kind"] == "support"


def test_staff_read_and_post_in_every_support_room_others_get_404(user: User) -> None:
    room_id = post_room(api_client_for(user), {"kind": "support"}).json()["id"]
    staff_client = api_client_for(StaffFactory.create())
    other = api_client_for(UserFactory.create())
    api_client_for(user).post(
        "/api/chat/messages", {"roomId": room_id, "message": "Help!"}, format="json"
    )
    assert staff_client.get(f"/api/chat/messages?roomId={room_id}").status_code == 200
    answer = staff_client.post(
        "/api/chat/messages", {"roomId": room_id, "message": "Here to help"}, format="json"
    )
    assert answer.status_code == 201
    assert other.get(f"/api/chat/messages?roomId={room_id}").status_code == 404
    assert (
        other.post(
            "/api/chat/messages", {"roomId": room_id, "message": "sneaky"}, format="json"
        ).status_code
        == 404
    )


def test_staff_list_support_rooms_waiting_for_an_answer_oldest_first(staff: User) -> None:
    first, second, answered = UserFactory.create(), UserFactory.create(), UserFactory.create()
    ids = {}
    for traveller in (first, second, answered):
        room, _ = services.support_room_get_or_create(user=traveller)
        services.message_send(user=traveller, room_id=room.pk, text="Hello?")
        ids[traveller.pk] = room.pk
    services.message_send(user=staff, room_id=ids[answered.pk], text="Answered")
    waiting = api_client_for(staff).get("/api/chat/rooms?waiting=true")
    assert waiting.status_code == 200
    assert [r["id"] for r in waiting.json()["results"]] == [ids[first.pk], ids[second.pk]]
    assert api_client_for(first).get("/api/chat/rooms?waiting=true").status_code == 403


# --- direct -------------------------------------------------------------------------------------


def test_direct_room_is_one_per_pair(user: User) -> None:
    other = UserFactory.create()
    mine = post_room(api_client_for(user), {"kind": "direct", "userId": other.pk})
    theirs = post_room(api_client_for(other), {"kind": "direct", "userId": user.pk})
    assert mine.status_code == 201
    assert theirs.status_code == 200
    assert mine.json()["id"] == theirs.json()["id"]
    third = api_client_for(UserFactory.create())
    assert third.get(f"/api/chat/messages?roomId={mine.json()['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"kind": "direct"}, 400),
        ({"kind": "direct", "userId": "x"}, 400),
        ({"kind": "direct", "userId": 99999999}, 404),
    ],
)
def test_bad_direct_room_requests(user: User, body: dict[str, Any], status: int) -> None:
    assert post_room(api_client_for(user), body).status_code == status


def test_direct_room_with_oneself_is_400(user: User) -> None:
    assert post_room(api_client_for(user), {"kind": "direct", "userId": user.pk}).status_code == 400


# --- group --------------------------------------------------------------------------------------


def test_staff_create_a_group_room_for_chosen_members(staff: User) -> None:
    member, outsider = UserFactory.create(), UserFactory.create()
    created = post_room(
        api_client_for(staff), {"name": "Guides", "kind": "group", "memberIds": [member.pk]}
    )
    assert created.status_code == 201
    room_id = created.json()["id"]
    assert api_client_for(member).get(f"/api/chat/messages?roomId={room_id}").status_code == 200
    assert api_client_for(outsider).get(f"/api/chat/messages?roomId={room_id}").status_code == 404


def test_traveller_cannot_create_a_group_room(user: User) -> None:
    body = {"name": "Mine", "kind": "group", "memberIds": []}
    assert post_room(api_client_for(user), body).status_code == 403


def test_group_room_with_unknown_members_is_400(staff: User) -> None:
    body = {"name": "G", "kind": "group", "memberIds": [99999999]}
    assert post_room(api_client_for(staff), body).status_code == 400


def test_departure_group_room_follows_bookings_and_guide() -> None:
    guide = StaffFactory.create()
    departure = DepartureFactory.create(guide=guide)
    kept = BookingFactory.create(departure=departure)
    cancelled = BookingFactory.create(departure=departure)
    room = services.departure_room_sync(departure_id=departure.pk)
    assert set(room.participants.values_list("user_id", flat=True)) == {
        guide.pk,
        kept.user_id,
        cancelled.user_id,
    }
    cancelled.status = Booking.Status.CANCELLED
    cancelled.save()
    services.departure_room_sync(departure_id=departure.pk)
    assert set(room.participants.values_list("user_id", flat=True)) == {guide.pk, kept.user_id}
    assert room.kind == "group"


def test_booking_through_the_api_joins_the_departure_group_room(user: User) -> None:
    departure = DepartureFactory.create()
    api_client_for(user).post("/api/bookings", {"departureId": departure.pk}, format="json")
    rooms = api_client_for(user).get("/api/chat/rooms").json()["results"]
    assert [r["kind"] for r in rooms] == ["group"]
    booking = Booking.objects.get(user=user)
    api_client_for(StaffFactory.create()).patch(
        f"/api/bookings/{booking.pk}", {"status": "CANCELLED"}, format="json"
    )
    assert api_client_for(user).get("/api/chat/rooms").json()["results"] == []


# --- lists and bad input ------------------------------------------------------------------------


def test_room_list_most_recent_activity_first_with_unread_counts(
    staff: User, user: User, django_assert_num_queries: Any
) -> None:
    quiet, _ = services.public_room_create_or_join(user=staff, name="Quiet")
    busy, _ = services.public_room_create_or_join(user=staff, name="Busy")
    for room in (quiet, busy):
        services.public_room_create_or_join(user=user, name=room.name)
    services.message_send(user=staff, room_id=quiet.pk, text="one")
    services.message_send(user=staff, room_id=busy.pk, text="two")
    services.message_send(user=staff, room_id=busy.pk, text="three")
    services.message_send(user=user, room_id=busy.pk, text="mine")  # own: not unread
    client = api_client_for(user)
    with django_assert_num_queries(2):  # the rooms, then their unread counts
        rooms = client.get("/api/chat/rooms").json()["results"]
    assert [(r["name"], r["unreadCount"]) for r in rooms] == [("Busy", 2), ("Quiet", 1)]
    assert rooms[0]["lastMessage"]["message"] == "mine"


def test_room_list_query_count_does_not_grow_with_rooms(
    staff: User, django_assert_num_queries: Any
) -> None:
    for n in range(8):
        room, _ = services.public_room_create_or_join(user=staff, name=f"Room {n}")
        services.message_send(user=staff, room_id=room.pk, text=f"hello {n}")
    with django_assert_num_queries(2):
        assert len(api_client_for(staff).get("/api/chat/rooms").json()["results"]) == 8


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": 5},
        {"kind": "nonsense", "name": "x"},
        {"kind": "group"},
        {"name": "G", "kind": "group", "memberIds": "1,2"},
    ],
)
def test_bad_room_requests_are_400(staff: User, body: dict[str, Any]) -> None:
    assert post_room(api_client_for(staff), body).status_code == 400


def test_anonymous_is_401(api: APIClient) -> None:
    assert api.get("/api/chat/rooms").status_code == 401
    assert post_room(api, {"name": "x"}).status_code == 401
