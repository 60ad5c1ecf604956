"""Staff moderate chat in the Django admin."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chat import services
from chat.models import ChatMessage, ChatRoom
from tests.conftest import DaphneServer, token_for
from tests.e2e.wsclient import open_socket, ping, receive_type, send
from tests.factories import UserFactory


@pytest.fixture
def admin_client_for_staff(db: None) -> tuple[Client, User]:
    staff = UserFactory.create(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    return client, staff


def test_room_change_page_lists_participants(admin_client_for_staff: tuple[Client, User]) -> None:
    client, staff = admin_client_for_staff
    room, _ = services.public_room_create_or_join(user=staff, name="Lobby")
    page = client.get(f"/admin/chat/chatroom/{room.pk}/change/")
    assert page.status_code == 200
    assert staff.username in page.content.decode()


def test_messages_are_searchable_and_filterable(
    admin_client_for_staff: tuple[Client, User],
) -> None:
    client, staff = admin_client_for_staff
    room, _ = services.public_room_create_or_join(user=staff, name="Lobby")
    services.message_send(user=staff, room_id=room.pk, text="find the needle")
    services.message_send(user=staff, room_id=room.pk, text="hay")
    found = client.get("/admin/chat/chatmessage/", {"q": "needle"}).content.decode()
    assert "find the needle" in found
    assert "hay" not in found
    by_room = client.get("/admin/chat/chatmessage/", {"room__id__exact": room.pk})
    assert by_room.status_code == 200
    assert client.get("/admin/chat/chatmessage/", {"is_hidden__exact": "0"}).status_code == 200


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_hide_action_removes_the_message_from_history_and_tells_the_room(
    daphne_server: DaphneServer,
) -> None:
    staff = UserFactory.create(is_staff=True, is_superuser=True)
    traveller = UserFactory.create()
    room, _ = services.public_room_create_or_join(user=staff, name="Moderated")
    services.public_room_create_or_join(user=traveller, name="Moderated")
    bad, _ = services.message_send(user=traveller, room_id=room.pk, text="spam spam")
    client = Client()
    client.force_login(staff)
    with open_socket(daphne_server.ws_url, token=token_for(traveller)) as ws:
        send(ws, {"type": "join_room", "roomId": room.pk})
        assert [m["id"] for m in receive_type(ws, "room_joined")["messages"]] == [bad.pk]
        response = client.post(
            "/admin/chat/chatmessage/",
            {"action": "hide_messages", "_selected_action": [bad.pk]},
        )
        assert response.status_code == 302
        hidden = receive_type(ws, "message_hidden")
        assert hidden == {"type": "message_hidden", "roomId": room.pk, "messageId": bad.pk}
        send(ws, {"type": "sync", "roomId": room.pk, "afterId": 0})
        assert receive_type(ws, "history")["messages"] == []
        ping(ws)
    assert ChatMessage.objects.get(pk=bad.pk).is_hidden
    assert ChatRoom.objects.get(pk=room.pk).last_message_id == bad.pk
