"""History pages, sending, idempotency and message validation through the REST API."""

import json
import threading
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from accounts.models import Profile
from chat import services
from chat.models import ChatMessage, ChatRoom
from tests.conftest import api_client_for
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

MESSAGE_FIELDS = {"id", "message", "roomId", "userId", "clientId", "createdAt", "user"}


@pytest.fixture
def room(user: User) -> ChatRoom:
    room, _ = services.public_room_create_or_join(user=StaffFactory.create(), name="Lobby")
    services.public_room_create_or_join(user=user, name="Lobby")
    return room


def fill(room: ChatRoom, count: int) -> list[int]:
    sender = UserFactory.create()
    return [
        services.message_send(user=sender, room_id=room.pk, text=f"m{n}")[0].pk
        for n in range(count)
    ]


def get_page(user: User, **query: Any) -> dict[str, Any]:
    response = api_client_for(user).get("/api/chat/messages", query)
    assert response.status_code == 200, response.content
    body = response.json()
    assert isinstance(body, dict)
    return body


def test_send_a_message(user: User, room: ChatRoom) -> None:
    response = api_client_for(user).post(
        "/api/chat/messages",
        {"roomId": room.pk, "message": "Hello", "clientId": "c1"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == MESSAGE_FIELDS
    assert body["message"] == "Hello"
    assert body["roomId"] == room.pk
    assert body["userId"] == user.pk
    assert body["clientId"] == "c1"
    assert body["user"] == {
        "id": user.pk,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "profileImage": None,
    }
    assert body["createdAt"].endswith("+00:00")


def test_newest_page_without_cursor_oldest_first(user: User, room: ChatRoom) -> None:
    ids = fill(room, 7)
    body = get_page(user, roomId=room.pk, limit=3)
    assert [m["id"] for m in body["results"]] == ids[-3:]
    assert body["hasMore"] is True


def test_paging_back_with_before_to_the_first_message(user: User, room: ChatRoom) -> None:
    ids = fill(room, 7)
    seen: list[int] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"roomId": room.pk, "limit": 3}
        if cursor:
            query["before"] = cursor
        body = get_page(user, **query)
        seen = [m["id"] for m in body["results"]] + seen
        if not body["hasMore"]:
            break
        cursor = body["results"][0]["id"]
    assert seen == ids


def test_paging_forward_with_after(user: User, room: ChatRoom) -> None:
    ids = fill(room, 5)
    body = get_page(user, roomId=room.pk, after=ids[1], limit=2)
    assert [m["id"] for m in body["results"]] == ids[2:4]
    assert body["hasMore"] is True
    body = get_page(user, roomId=room.pk, after=ids[3], limit=2)
    assert [m["id"] for m in body["results"]] == ids[4:]
    assert body["hasMore"] is False


def test_exact_page_size_has_no_more(user: User, room: ChatRoom) -> None:
    ids = fill(room, 3)
    body = get_page(user, roomId=room.pk, limit=3)
    assert [m["id"] for m in body["results"]] == ids
    assert body["hasMore"] is False
    assert get_page(user, roomId=room.pk, before=ids[0])["results"] == []
    assert get_page(user, roomId=room.pk, after=ids[-1])["hasMore"] is False


def test_default_limit_is_50(user: User, room: ChatRoom) -> None:
    fill(room, 55)
    body = get_page(user, roomId=room.pk)
    assert len(body["results"]) == 50
    assert body["hasMore"] is True


def test_history_costs_the_same_queries_whatever_the_page(
    user: User, room: ChatRoom, django_assert_num_queries: Any
) -> None:
    for _ in range(3):
        fill(room, 10)  # three senders
    client = api_client_for(user)
    # The room, one page with its senders' cards (a public room needs no membership).
    with django_assert_num_queries(2):
        client.get("/api/chat/messages", {"roomId": room.pk, "limit": 25})


def test_each_message_names_its_own_sender(user: User, room: ChatRoom) -> None:
    first, second = UserFactory.create(first_name="Ana"), UserFactory.create(first_name="Bo")
    services.message_send(user=first, room_id=room.pk, text="from Ana")
    services.message_send(user=second, room_id=room.pk, text="from Bo")

    results = get_page(user, roomId=room.pk)["results"]

    assert [(m["message"], m["userId"], m["user"]["firstName"]) for m in results] == [
        ("from Ana", first.pk, "Ana"),
        ("from Bo", second.pk, "Bo"),
    ]


def test_a_history_row_is_the_message_as_its_send_answered(user: User, room: ChatRoom) -> None:
    pictured = UserFactory.create(first_name="Ana", last_name="Lind")
    Profile.objects.update_or_create(
        user=pictured, defaults={"profile_image": "https://img.example/ana.png"}
    )
    sent = [
        api_client_for(pictured).post(
            "/api/chat/messages",
            {"roomId": room.pk, "message": "één ☕", "clientId": "c-1"},
            format="json",
        ),
        api_client_for(user).post(
            "/api/chat/messages", {"roomId": room.pk, "message": "hi"}, format="json"
        ),
    ]
    assert [r.status_code for r in sent] == [201, 201]

    for query in ({}, {"after": 0}, {"before": sent[1].json()["id"] + 1}):
        assert get_page(user, roomId=room.pk, **query)["results"] == [r.json() for r in sent]


def test_newest_page_when_the_last_message_is_hidden_and_other_rooms_are_newer(
    user: User, room: ChatRoom
) -> None:
    ids = fill(room, 3)
    services.message_hide(actor=StaffFactory.create(), message_id=ids[2])
    other, _ = services.public_room_create_or_join(user=StaffFactory.create(), name="Other")
    fill(other, 2)

    body = get_page(user, roomId=room.pk)

    assert [m["id"] for m in body["results"]] == ids[:2]
    assert body["hasMore"] is False


def test_hidden_messages_vanish_from_history(user: User, room: ChatRoom) -> None:
    ids = fill(room, 3)
    services.message_hide(actor=StaffFactory.create(), message_id=ids[1])
    assert [m["id"] for m in get_page(user, roomId=room.pk)["results"]] == [ids[0], ids[2]]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"roomId": "x"},
        {"roomId": 0},
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
        {"before": "x"},
        {"after": -1},
        {"before": 5, "after": 3},
    ],
)
def test_bad_history_queries_are_400(user: User, room: ChatRoom, query: dict[str, Any]) -> None:
    params = {"roomId": room.pk, **query} if "roomId" not in query and query else query
    response = api_client_for(user).get("/api/chat/messages", params)
    assert response.status_code == 400


def test_unknown_and_invisible_rooms_are_the_same_404(user: User) -> None:
    other = UserFactory.create()
    direct, _ = services.direct_room_get_or_create(
        user=other, other_user_id=StaffFactory.create().pk
    )
    client = api_client_for(user)
    hidden = client.get("/api/chat/messages", {"roomId": direct.pk})
    missing = client.get("/api/chat/messages", {"roomId": 99999999})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    post_hidden = client.post(
        "/api/chat/messages", {"roomId": direct.pk, "message": "hi"}, format="json"
    )
    post_missing = client.post(
        "/api/chat/messages", {"roomId": 99999999, "message": "hi"}, format="json"
    )
    assert post_hidden.status_code == post_missing.status_code == 404
    assert post_hidden.json() == post_missing.json()
    assert not ChatMessage.objects.exists()


# --- idempotency ----------------------------------------------------------------------------


def test_repeated_client_id_returns_the_first_message_stored_once(
    user: User, room: ChatRoom
) -> None:
    client = api_client_for(user)
    first = client.post(
        "/api/chat/messages", {"roomId": room.pk, "message": "one", "clientId": "k"}, format="json"
    )
    again = client.post(
        "/api/chat/messages", {"roomId": room.pk, "message": "two", "clientId": "k"}, format="json"
    )
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert ChatMessage.objects.count() == 1


def test_same_client_id_from_another_user_is_another_message(user: User, room: ChatRoom) -> None:
    other = UserFactory.create()
    services.public_room_create_or_join(user=other, name="Lobby")
    for sender in (user, other):
        response = api_client_for(sender).post(
            "/api/chat/messages",
            {"roomId": room.pk, "message": "x", "clientId": "k"},
            format="json",
        )
        assert response.status_code == 201
    assert ChatMessage.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_client_id_store_one_row() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's concurrency")
    staff, user = StaffFactory.create(), UserFactory.create()
    room, _ = services.public_room_create_or_join(user=staff, name="Race")
    services.public_room_create_or_join(user=user, name="Race")
    barrier = threading.Barrier(4)
    results: list[tuple[int, bool]] = []

    def send() -> None:
        try:
            barrier.wait()
            message, created = services.message_send(
                user=user, room_id=room.pk, text="once", client_id="race-1"
            )
            results.append((message.pk, created))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ChatMessage.objects.filter(client_id="race-1").count() == 1
    assert len({pk for pk, _ in results}) == 1
    assert sum(created for _, created in results) == 1


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\n\t ", "x" * 4001, "x" * (1024 * 1024 - 100), 5, None, ["a"], {"a": 1}, True],
)
def test_bad_messages_are_400_and_nothing_is_stored(user: User, room: ChatRoom, text: Any) -> None:
    response = api_client_for(user).post(
        "/api/chat/messages", {"roomId": room.pk, "message": text}, format="json"
    )
    assert response.status_code in (400, 413)
    assert not ChatMessage.objects.exists()


@pytest.mark.parametrize("raw", ['"a\\u0000b"', '"\\ud800"', '"ok \\udfff"'])
def test_nul_and_lone_surrogates_are_400(user: User, room: ChatRoom, raw: str) -> None:
    body = f'{{"roomId": {room.pk}, "message": {raw}}}'
    response = api_client_for(user).post(
        "/api/chat/messages", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert not ChatMessage.objects.exists()


def test_4000_characters_after_trimming_are_fine_and_stored_exactly(
    user: User, room: ChatRoom
) -> None:
    text = "  " + "é" * 3999 + "😀" + "\n"
    response = api_client_for(user).post(
        "/api/chat/messages", {"roomId": room.pk, "message": text}, format="json"
    )
    assert response.status_code == 201
    assert ChatMessage.objects.get().message == text


def test_script_tags_are_stored_and_returned_verbatim(user: User, room: ChatRoom) -> None:
    text = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    client = api_client_for(user)
    created = client.post("/api/chat/messages", {"roomId": room.pk, "message": text}, format="json")
    assert created.json()["message"] == text
    assert get_page(user, roomId=room.pk)["results"][0]["message"] == text


@pytest.mark.parametrize("client_id", [5, "", "x" * 65, ["a"]])
def test_bad_client_ids_are_400(user: User, room: ChatRoom, client_id: Any) -> None:
    body = {"roomId": room.pk, "message": "hi", "clientId": client_id}
    response = api_client_for(user).post("/api/chat/messages", body, format="json")
    assert response.status_code == 400


def test_malformed_json_body_is_400(user: User, room: ChatRoom) -> None:
    response = api_client_for(user).post(
        "/api/chat/messages", "{bad", content_type="application/json"
    )
    assert response.status_code == 400
    assert json.loads(response.content)
