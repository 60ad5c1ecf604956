"""Presence services (persisting transitions only) and chat's presence glue (audiences, sends)."""

import asyncio
import datetime
import json
import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User

from chat import presence_ws
from chat.models import ChatRoom
from presence import services
from presence.models import UserPresence
from presence.state import Transition
from presence.typing import typing_state
from tests.factories import StaffFactory, UserFactory
from tests.presence.conftest import shared_room
from travelsite import realtime

pytestmark = pytest.mark.services


def transition(user: User, *, is_online: bool, version: int, at: float | None = None) -> Transition:
    return Transition(user_id=user.pk, is_online=is_online, version=version, at=at or time.time())


# --- Persisting transitions ----------------------------------------------------------------


@pytest.mark.django_db
def test_going_online_then_offline_is_stored_with_last_seen() -> None:
    user = UserFactory.create()
    went_offline_at = time.time()

    online = services.presence_transition_persist(
        transition=transition(user, is_online=True, version=1)
    )
    offline = services.presence_transition_persist(
        transition=transition(user, is_online=False, version=2, at=went_offline_at)
    )

    row = UserPresence.objects.get(user=user)
    assert online is not None and online.is_online and online.last_seen_at is None
    assert offline is not None and not offline.is_online
    assert not row.is_online and row.version == 2
    assert row.last_seen_at == datetime.datetime.fromtimestamp(went_offline_at, tz=datetime.UTC)


@pytest.mark.django_db
def test_a_transition_is_stored_in_one_statement(django_assert_num_queries: Any) -> None:
    user = UserFactory.create()

    with django_assert_num_queries(1):
        online = services.presence_transition_persist(
            transition=transition(user, is_online=True, version=1)
        )
    with django_assert_num_queries(1):
        offline = services.presence_transition_persist(
            transition=transition(user, is_online=False, version=2)
        )

    assert online is not None and offline is not None and offline.version == 2


@pytest.mark.django_db
def test_coming_back_online_keeps_when_the_user_was_last_seen() -> None:
    user = UserFactory.create()
    went_offline_at = time.time() - 60
    services.presence_transition_persist(
        transition=transition(user, is_online=False, version=1, at=went_offline_at)
    )

    online = services.presence_transition_persist(
        transition=transition(user, is_online=True, version=2)
    )

    last_seen = datetime.datetime.fromtimestamp(went_offline_at, tz=datetime.UTC)
    assert online is not None and online.is_online and online.last_seen_at == last_seen
    row = UserPresence.objects.get(user=user)
    assert row.is_online and row.version == 2 and row.last_seen_at == last_seen


@pytest.mark.django_db
def test_an_older_transition_arriving_late_changes_nothing() -> None:
    user = UserFactory.create()
    services.presence_transition_persist(transition=transition(user, is_online=False, version=5))

    late = services.presence_transition_persist(
        transition=transition(user, is_online=True, version=4)
    )

    assert late is None
    assert not UserPresence.objects.get(user=user).is_online


@pytest.mark.django_db
def test_a_deleted_users_transition_is_dropped() -> None:
    assert (
        services.presence_transition_persist(
            transition=Transition(user_id=987654, is_online=True, version=1, at=time.time())
        )
        is None
    )


@pytest.mark.django_db
def test_transitions_arriving_together_are_stored_in_one_statement(
    django_assert_num_queries: Any,
) -> None:
    first, second = UserFactory.create(), UserFactory.create()

    with django_assert_num_queries(1):
        changes = services.presence_transitions_persist(
            transitions=[
                transition(first, is_online=True, version=1),
                transition(second, is_online=False, version=1),
                Transition(user_id=987654, is_online=True, version=1, at=time.time()),
            ]
        )

    online, offline, deleted = changes
    assert online is not None and online.user_id == first.pk and online.is_online
    assert offline is not None and offline.user_id == second.pk and not offline.is_online
    assert deleted is None
    assert UserPresence.objects.get(user=first).is_online
    assert not UserPresence.objects.get(user=second).is_online


@pytest.mark.django_db
def test_many_transitions_are_stored_in_chunks(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    monkeypatch.setattr(services, "PERSIST_CHUNK", 2)
    users = UserFactory.create_batch(5)

    with django_assert_num_queries(3):
        changes = services.presence_transitions_persist(
            transitions=[transition(user, is_online=True, version=1) for user in users]
        )

    assert [change.user_id if change else None for change in changes] == [u.pk for u in users]
    assert UserPresence.objects.filter(is_online=True, user__in=users).count() == 5


@pytest.mark.django_db
def test_of_one_users_transitions_stored_together_the_newest_wins() -> None:
    user = UserFactory.create()

    older, newer = services.presence_transitions_persist(
        transitions=[
            transition(user, is_online=False, version=3),
            transition(user, is_online=True, version=2),
        ]
    )

    assert newer is None  # as if it had lost the race to version 3
    assert older is not None and not older.is_online and older.version == 3
    row = UserPresence.objects.get(user=user)
    assert not row.is_online and row.version == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("isolated_presence")
@pytest.mark.asyncio
async def test_users_coming_online_at_once_each_hear_their_own_change() -> None:
    users = [await User.objects.acreate(username=f"storm-{n}") for n in range(6)]

    changes = await asyncio.gather(
        *(services.presence_socket_opened(user_id=u.pk, socket_id=f"s-{u.pk}") for u in users)
    )

    assert [(c.user_id, c.is_online) if c else None for c in changes] == [
        (u.pk, True) for u in users
    ]
    assert await UserPresence.objects.filter(is_online=True).acount() == len(users)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("isolated_presence")
@pytest.mark.asyncio
async def test_only_transitions_write_to_the_database() -> None:
    user = await UserFactory._meta.model.objects.acreate(username="tabs")

    opened = await services.presence_socket_opened(user_id=user.pk, socket_id="tab-1")
    row = await UserPresence.objects.aget(user_id=user.pk)
    second = await services.presence_socket_opened(user_id=user.pk, socket_id="tab-2")
    assert await services.presence_heartbeat(sockets=[(user.pk, "tab-1"), (user.pk, "tab-2")]) == []
    first_closed = await services.presence_socket_closed(user_id=user.pk, socket_id="tab-1")
    unchanged = await UserPresence.objects.aget(user_id=user.pk)
    last_closed = await services.presence_socket_closed(user_id=user.pk, socket_id="tab-2")

    assert opened is not None and opened.is_online
    assert second is None and first_closed is None
    assert unchanged.updated_at == row.updated_at  # neither the 2nd tab nor a heartbeat wrote
    assert last_closed is not None and not last_closed.is_online
    assert last_closed.last_seen_at is not None
    assert not (await UserPresence.objects.aget(user_id=user.pk)).is_online


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_sweep_persists_users_whose_sockets_expired(
    isolated_presence: str, settings: Any
) -> None:
    user = await User.objects.acreate(username="crashed")
    settings.PRESENCE_SOCKET_TTL_SECONDS = 0.1
    settings.PRESENCE_SWEEP_INTERVAL_SECONDS = 0.1
    await services.presence_socket_opened(user_id=user.pk, socket_id="on-a-dead-process")
    await asyncio.sleep(0.2)

    changes = await services.presence_sweep()

    assert [(c.user_id, c.is_online) for c in changes] == [(user.pk, False)]
    assert not (await UserPresence.objects.aget(user_id=user.pk)).is_online


# --- Typing ended by a message -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("isolated_presence")
def test_sending_a_message_drops_the_sender_from_the_typists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[list[str], dict[str, Any]]] = []
    monkeypatch.setattr(
        realtime, "send", lambda groups, event, **meta: sent.append((list(groups), event))
    )
    typist, other = UserFactory.create_batch(2)
    async_to_sync(typing_state().start)(room_id=42, user_id=typist.pk)
    async_to_sync(typing_state().start)(room_id=42, user_id=other.pk)

    services.typing_stopped_by_messages(pairs=[(42, typist.pk)])
    services.typing_stopped_by_messages(pairs=[(42, typist.pk)])  # no longer typing

    assert sent == [
        (
            [realtime.room_group(42)],
            {
                "type": "typing",
                "roomId": 42,
                "users": [
                    {"id": other.pk, "firstName": other.first_name, "lastName": other.last_name}
                ],
            },
        )
    ]


def test_typing_stopped_by_messages_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def stop_sync(self, **kwargs: Any) -> None:
            raise ConnectionError("redis is down")

    monkeypatch.setattr(services, "typing_state", Broken)
    services.typing_stopped_by_messages(pairs=[(1, 1)])


# --- Audiences and sends (chat's glue) -----------------------------------------------------------


def online(*users: User) -> None:
    for user in users:
        UserPresence.objects.update_or_create(user=user, defaults={"is_online": True})


@pytest.mark.django_db
def test_audience_is_online_non_staff_users_sharing_an_active_room() -> None:
    user, mate, offline_mate, stranger, closed_mate = UserFactory.create_batch(5)
    staff = StaffFactory.create()
    shared_room(user, mate, offline_mate, staff)
    shared_room(closed_mate, user, active=False)
    shared_room(stranger, closed_mate)
    online(mate, stranger, staff, closed_mate)

    audiences = presence_ws.presence_audiences(user_ids=[user.pk, stranger.pk])

    assert audiences == {user.pk: {mate.pk}, stranger.pk: {closed_mate.pk}}


@pytest.mark.django_db
def test_audience_costs_two_queries_however_many_rooms(
    django_assert_num_queries: Any,
) -> None:
    users = UserFactory.create_batch(4)
    for _ in range(30):
        shared_room(*users)
    online(*users)

    with django_assert_num_queries(2):
        audiences = presence_ws.presence_audiences(user_ids=[u.pk for u in users])

    assert audiences[users[0].pk] == {u.pk for u in users[1:]}


def _recording_sends(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    sends: list[tuple[str, dict[str, Any]]] = []

    async def fake_asend_messages(batch: Any) -> None:
        sends.extend(batch)

    monkeypatch.setattr(realtime, "asend_messages", fake_asend_messages)
    return sends


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_burst_in_many_rooms_costs_one_send_per_recipient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sends = _recording_sends(monkeypatch)
    user, *mates = await _users_in_many_rooms(rooms=25, mates=3)

    await presence_ws.presence_broadcast(
        [
            services.PresenceChange(user_id=user, is_online=False, last_seen_at=None, version=1),
        ]
    )

    assert sorted(group for group, _ in sends) == sorted(
        [presence_ws.STAFF_GROUP] + [realtime.user_group(m) for m in mates]
    )
    event = {"type": "presence", "userId": user, "isOnline": False, "lastSeenAt": None}
    for group, message in sends:
        assert realtime.event_texts(message) == [realtime.encode(event)]
        if group == presence_ws.STAFF_GROUP:
            assert message["exclude_user"] == user  # a staff member's own change is not echoed


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_room_mates_coming_online_together_cost_one_send_per_recipient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sends = _recording_sends(monkeypatch)
    encoded: list[dict[str, Any]] = []
    encode = realtime.encode

    def counting_encode(event: dict[str, Any]) -> str:
        encoded.append(event)
        return encode(event)

    monkeypatch.setattr(realtime, "encode", counting_encode)
    user, *mates = await _users_in_many_rooms(rooms=2, mates=5, all_online=True)
    everyone = [user, *mates]

    await presence_ws.presence_broadcast(
        [
            services.PresenceChange(user_id=u, is_online=True, last_seen_at=None, version=1)
            for u in everyone
        ]
    )

    user_sends = {group: m for group, m in sends if group != presence_ws.STAFF_GROUP}
    assert len(user_sends) == len(everyone)  # not len(everyone) ** 2
    assert len(sends) - len(user_sends) == len(everyone)  # staff: one per change
    for recipient in everyone:
        heard = [
            json.loads(t)["userId"]
            for t in realtime.event_texts(user_sends[realtime.user_group(recipient)])
        ]
        assert sorted(heard) == sorted(set(everyone) - {recipient})
    # Each change encoded once, though it goes to every room-mate and to staff (not N²).
    assert sorted(e["userId"] for e in encoded) == sorted(everyone)


async def _users_in_many_rooms(*, rooms: int, mates: int, all_online: bool = False) -> list[int]:
    from asgiref.sync import sync_to_async

    def make() -> list[int]:
        users = UserFactory.create_batch(mates + 1)
        for _ in range(rooms):
            shared_room(*users)
        online(*(users if all_online else users[1:]))
        return [u.pk for u in users]

    return await sync_to_async(make)()


@pytest.mark.django_db
def test_room_members_presence_lists_the_others_online_first() -> None:
    viewer, never, away, here = UserFactory.create_batch(4)
    room = shared_room(viewer, never, away, here, kind=ChatRoom.Kind.GROUP)
    online(here, viewer)
    UserPresence.objects.create(
        user=away, is_online=False, last_seen_at=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    )

    listed = presence_ws.room_members_presence(room_id=room.pk, viewer=viewer)

    assert listed[0]["userId"] == here.pk
    assert {p["userId"] for p in listed} == {never.pk, away.pk, here.pk}
    by_id = {p["userId"]: p for p in listed}
    assert by_id[never.pk]["isOnline"] is False and by_id[never.pk]["lastSeenAt"] is None
    assert by_id[away.pk]["lastSeenAt"] == "2030-01-01T00:00:00+00:00"
