"""Who a process tells its unread counts to (chat/unread_ws.py), with the counts' reader faked:
which users it asks about per room, and which sockets hear the answer."""

from dataclasses import dataclass, field
from typing import Any

import pytest

from chat import selectors, unread_ws


@dataclass(eq=False)
class FakeSocket:
    user_id: int
    joined_rooms: set[int] = field(default_factory=set)
    heard: list[dict[str, Any]] = field(default_factory=list)

    async def send_event(self, event: dict[str, Any]) -> None:
        self.heard.append(event)


@pytest.fixture
def sockets(monkeypatch: pytest.MonkeyPatch) -> dict[int, set[FakeSocket]]:
    local: dict[int, set[FakeSocket]] = {}
    monkeypatch.setattr(unread_ws, "_local_sockets", local)
    monkeypatch.setattr(unread_ws, "_known", {})
    return local


def connect(local: dict[int, set[FakeSocket]], user_id: int, *joined: int) -> FakeSocket:
    socket = FakeSocket(user_id, set(joined))
    local.setdefault(user_id, set()).add(socket)
    return socket


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[int, set[int]]]:
    """Each call of the counts' reader: {room: the users asked about}. Every user asked about
    is a participant with `10 * room + user` unread messages."""
    calls: list[dict[int, set[int]]] = []

    def counts(wanted: selectors.UnreadWanted) -> dict[int, selectors.RoomUnread]:
        calls.append({room: set(users) for room, (users, _known) in wanted.items()})
        return {
            room: selectors.RoomUnread(
                through=1, counts={user: (0, 10 * room + user) for user in users}
            )
            for room, (users, _known) in wanted.items()
        }

    monkeypatch.setattr(selectors, "unread_counts_advanced", counts)
    return calls


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_counts_go_to_the_sockets_not_showing_the_room(
    sockets: dict[int, set[FakeSocket]], asked: list[dict[int, set[int]]]
) -> None:
    looking = connect(sockets, 1, 7)  # user 1: one tab in room 7, one elsewhere
    elsewhere = connect(sockets, 1)
    only_in_room = connect(sockets, 2, 7, 8)  # user 2: every socket shows room 7
    in_other_room = connect(sockets, 3, 8)

    await unread_ws.tell_local_sockets([7, 8])

    # User 2 is looking at room 7 with every socket: not asked about, not told.
    assert asked == [{7: {1, 3}, 8: {1}}]
    assert looking.heard == [{"type": "unread", "roomId": 8, "unreadCount": 81}]
    assert sorted(e["roomId"] for e in elsewhere.heard) == [7, 8]
    assert only_in_room.heard == []
    assert in_other_room.heard == [{"type": "unread", "roomId": 7, "unreadCount": 73}]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_room_every_user_here_is_looking_at_costs_no_count(
    sockets: dict[int, set[FakeSocket]], asked: list[dict[int, set[int]]]
) -> None:
    watchers = [connect(sockets, user, 7) for user in (1, 2, 3)]

    await unread_ws.tell_local_sockets([7])

    assert asked == []
    assert all(w.heard == [] for w in watchers)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_many_rooms_and_sockets_ask_once_with_one_set_of_users(
    sockets: dict[int, set[FakeSocket]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process with many sockets and a busy window: the rooms nobody here is looking at share
    one set of users (no set of 2,000 users built per room)."""
    for user in range(2_000):
        connect(sockets, user, 1_000 + user % 3)
    seen: list[selectors.UnreadWanted] = []

    def counts(wanted: selectors.UnreadWanted) -> dict[int, selectors.RoomUnread]:
        seen.append(wanted)
        return {room: selectors.RoomUnread(through=1, counts={}) for room in wanted}

    monkeypatch.setattr(selectors, "unread_counts_advanced", counts)

    await unread_ws.tell_local_sockets(list(range(50)))

    [wanted] = seen
    assert len({id(users) for users, _known in wanted.values()}) == 1
    assert len(next(iter(wanted.values()))[0]) == 2_000
