"""MESSAGE notifications: for participants who are away from a room, one per room until read."""

import pytest
from django.contrib.auth.models import User

from chat import services
from chat.models import ChatRoom
from notifications.models import Notification
from presence.models import UserPresence
from tests.conftest import DaphneServer, token_for
from tests.e2e.wsclient import open_socket, ping, receive_type
from tests.factories import StaffFactory, UserFactory

# Transactional: notifications are made once the message commits.
pytestmark = pytest.mark.django_db(transaction=True)


def direct_room() -> tuple[User, User, ChatRoom]:
    alice, bob = UserFactory.create(first_name="Alice"), UserFactory.create()
    room, _ = services.direct_room_get_or_create(user=alice, other_user_id=bob.pk)
    return alice, bob, room


def message_notifications(user: User) -> list[Notification]:
    return list(Notification.objects.filter(user=user, type="MESSAGE"))


def test_burst_to_an_offline_user_gives_one_message_notification() -> None:
    alice, bob, room = direct_room()
    for n in range(20):
        services.message_send(user=alice, room_id=room.pk, text=f"hello {n}")
    (notification,) = message_notifications(bob)
    assert notification.title == f"New message from {alice.get_full_name()}"
    assert notification.message == "hello 0"
    assert notification.data["roomId"] == room.pk
    assert notification.is_read is False
    assert message_notifications(alice) == []


def test_reading_the_room_clears_it_and_the_next_message_notifies_again() -> None:
    alice, bob, room = direct_room()
    services.message_send(user=alice, room_id=room.pk, text="one")
    last, _ = services.message_send(user=alice, room_id=room.pk, text="two")
    services.room_mark_read(user=bob, room_id=room.pk, message_id=last.pk)
    assert [n.is_read for n in message_notifications(bob)] == [True]
    services.message_send(user=alice, room_id=room.pk, text="three")
    assert sorted(n.is_read for n in message_notifications(bob)) == [False, True]


def test_online_reader_following_the_room_gets_no_notification() -> None:
    alice, bob, room = direct_room()
    UserPresence.objects.create(user=bob, is_online=True)
    first, _ = services.message_send(user=alice, room_id=room.pk, text="one")
    assert message_notifications(bob) == []  # first message: bob had read everything
    services.room_mark_read(user=bob, room_id=room.pk, message_id=first.pk)
    services.message_send(user=alice, room_id=room.pk, text="two")
    assert message_notifications(bob) == []  # bob reads along


def test_online_user_who_has_not_read_the_room_is_notified() -> None:
    alice, bob, room = direct_room()
    UserPresence.objects.create(user=bob, is_online=True)
    services.message_send(user=alice, room_id=room.pk, text="one")
    services.message_send(user=alice, room_id=room.pk, text="two")  # bob never read "one"
    assert len(message_notifications(bob)) == 1


def test_public_rooms_do_not_notify() -> None:
    staff, bob = StaffFactory.create(), UserFactory.create()
    room, _ = services.public_room_create_or_join(user=staff, name="Lobby")
    services.public_room_create_or_join(user=bob, name="Lobby")
    services.message_send(user=staff, room_id=room.pk, text="hi all")
    services.message_send(user=staff, room_id=room.pk, text="hi again")
    assert message_notifications(bob) == []


def test_muted_message_notifications_are_not_created() -> None:
    from notifications.models import NotificationPreference

    alice, bob, room = direct_room()
    NotificationPreference.objects.create(user=bob, type="MESSAGE", in_app=False, email=False)
    services.message_send(user=alice, room_id=room.pk, text="psst")
    assert message_notifications(bob) == []


@pytest.mark.services
def test_offline_users_notification_arrives_live_on_their_other_socket(
    daphne_server: DaphneServer,
) -> None:
    alice, bob, room = direct_room()
    with open_socket(daphne_server.ws_url, token=token_for(bob)) as bob_ws:
        ping(bob_ws)
        # bob is online but has not read the room: the second message notifies him
        services.message_send(user=alice, room_id=room.pk, text="one")
        services.message_send(user=alice, room_id=room.pk, text="two")
        event = receive_type(bob_ws, "notification")
        assert event["notification"]["type"] == "MESSAGE"
        assert event["notification"]["data"]["roomId"] == room.pk
        assert event["unreadCount"] == 1


@pytest.mark.services
def test_staff_hear_every_support_message_live(daphne_server: DaphneServer) -> None:
    staff, traveller = StaffFactory.create(), UserFactory.create()
    room, _ = services.support_room_get_or_create(user=traveller)
    with open_socket(daphne_server.ws_url, token=token_for(staff)) as staff_ws:
        ping(staff_ws)
        message, _ = services.message_send(user=traveller, room_id=room.pk, text="Where is my bus?")
        event = receive_type(staff_ws, "support_message")
        assert event["room"]["id"] == room.pk
        assert event["room"]["awaitingStaffSince"] is not None
        assert event["message"]["id"] == message.pk
        assert event["message"]["message"] == "Where is my bus?"
