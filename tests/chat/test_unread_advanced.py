"""Unread counts advanced from what was counted before equal counting everything again."""

import pytest
from django.contrib.auth.models import User

from chat import selectors, services
from chat.models import ChatMessage, ChatRoom
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def lobby() -> ChatRoom:
    room, _ = services.public_room_create_or_join(user=StaffFactory.create(), name="Lobby")
    return room


def members(room: ChatRoom, count: int) -> list[User]:
    users = UserFactory.create_batch(count)
    for user in users:
        services.public_room_create_or_join(user=user, name=room.name)
    return users


def say(user: User, room: ChatRoom, *texts: str) -> list[int]:
    return [services.message_send(user=user, room_id=room.pk, text=t)[0].pk for t in texts]


def full_counts(room: ChatRoom, users: list[User]) -> dict[int, int]:
    return selectors.unread_counts_for_room(room_id=room.pk, user_ids=[u.pk for u in users])


def advanced(
    room: ChatRoom, users: list[User], known: selectors.RoomUnread | None
) -> selectors.RoomUnread:
    return selectors.unread_counts_advanced({room.pk: ([u.pk for u in users], known)})[room.pk]


def counts_of(state: selectors.RoomUnread) -> dict[int, int]:
    return {user_id: count for user_id, (_marker, count) in state.counts.items()}


def test_advancing_adds_the_others_new_messages_and_not_ones_own(lobby: ChatRoom) -> None:
    ana, bo, cy = members(lobby, 3)
    say(ana, lobby, "a1", "a2")
    known = advanced(lobby, [ana, bo, cy], None)
    assert counts_of(known) == {ana.pk: 0, bo.pk: 2, cy.pk: 2}

    say(bo, lobby, "b1")
    say(ana, lobby, "a3")
    known = advanced(lobby, [ana, bo, cy], known)

    assert counts_of(known) == full_counts(lobby, [ana, bo, cy]) == {ana.pk: 1, bo.pk: 3, cy.pk: 4}
    assert known.through == ChatMessage.objects.filter(room=lobby).latest("id").pk


def test_someone_who_read_meanwhile_is_counted_again(lobby: ChatRoom) -> None:
    ana, bo = members(lobby, 2)
    ids = say(ana, lobby, "a1", "a2", "a3")
    known = advanced(lobby, [bo], None)
    assert counts_of(known) == {bo.pk: 3}

    services.room_mark_read(user=bo, room_id=lobby.pk, message_id=ids[1])
    say(ana, lobby, "a4")
    known = advanced(lobby, [bo], known)

    assert counts_of(known) == full_counts(lobby, [bo]) == {bo.pk: 2}


def test_someone_new_to_the_counts_is_counted_in_full(lobby: ChatRoom) -> None:
    ana, bo, cy = members(lobby, 3)
    say(ana, lobby, "a1")
    known = advanced(lobby, [bo], None)
    say(ana, lobby, "a2")

    known = advanced(lobby, [bo, cy], known)

    assert counts_of(known) == full_counts(lobby, [bo, cy]) == {bo.pk: 2, cy.pk: 2}


def test_nothing_new_keeps_the_counts(lobby: ChatRoom) -> None:
    ana, bo = members(lobby, 2)
    say(ana, lobby, "a1", "a2")
    known = advanced(lobby, [bo], None)

    assert advanced(lobby, [bo], known) == known


def test_after_a_hide_counting_again_leaves_the_hidden_message_out(lobby: ChatRoom) -> None:
    ana, bo = members(lobby, 2)
    ids = say(ana, lobby, "a1", "spam")
    known = advanced(lobby, [bo], None)
    services.message_hide(actor=StaffFactory.create(), message_id=ids[1])

    assert counts_of(advanced(lobby, [bo], None)) == {bo.pk: 1}
    assert counts_of(advanced(lobby, [bo], known)) == {bo.pk: 2}  # why hides ask for a recount


def test_users_who_are_not_participants_are_left_out(lobby: ChatRoom) -> None:
    (ana,) = members(lobby, 1)
    stranger = UserFactory.create()
    say(ana, lobby, "a1")

    assert counts_of(advanced(lobby, [ana, stranger], None)) == {ana.pk: 0}


def test_several_rooms_at_once_count_each_room_as_alone(lobby: ChatRoom) -> None:
    ana, bo, cy = members(lobby, 3)
    staff = StaffFactory.create()
    deck, _ = services.public_room_create_or_join(user=staff, name="Deck")
    empty, _ = services.public_room_create_or_join(user=staff, name="Quiet")
    for user in (ana, bo, cy):
        services.public_room_create_or_join(user=user, name="Deck")
    services.public_room_create_or_join(user=cy, name="Quiet")
    say(ana, lobby, "a1")
    say(bo, deck, "b1", "b2")
    lobby_known = advanced(lobby, [ana, bo, cy], None)
    say(cy, lobby, "c1")
    say(ana, deck, "a2")
    services.room_mark_read(user=cy, room_id=deck.pk, message_id=say(bo, deck, "b3")[0])

    together = selectors.unread_counts_advanced(
        {
            lobby.pk: ([ana.pk, bo.pk, cy.pk], lobby_known),  # advanced
            deck.pk: ([ana.pk, cy.pk], None),  # in full; Bo not asked for
            empty.pk: ([cy.pk, ana.pk], None),  # no messages; Ana not a participant
        }
    )

    assert together[lobby.pk] == advanced(lobby, [ana, bo, cy], lobby_known)
    assert counts_of(together[lobby.pk]) == full_counts(lobby, [ana, bo, cy])
    assert counts_of(together[deck.pk]) == full_counts(deck, [ana, cy]) == {ana.pk: 3, cy.pk: 0}
    assert together[empty.pk] == selectors.RoomUnread(through=0, counts={cy.pk: (0, 0)})
