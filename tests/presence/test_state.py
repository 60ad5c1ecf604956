"""The presence registry and the typists, against the real Redis (and the one-process fallback)."""

import asyncio
import time
from typing import Any

import pytest

from presence import conf
from presence.state import MemoryPresenceState, PresenceState, RedisPresenceState
from presence.typing import MemoryTypingState, RedisTypingState, TypingState

TTL = 10.0
BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.services)]


@pytest.fixture(params=BACKENDS)
def state(request: pytest.FixtureRequest) -> PresenceState:
    if request.param == "memory":
        return MemoryPresenceState(ttl=TTL)
    url = request.getfixturevalue("redis_url")
    return RedisPresenceState(url, prefix=request.getfixturevalue("redis_prefix"), ttl=TTL)


@pytest.fixture(params=BACKENDS)
def typing(request: pytest.FixtureRequest) -> TypingState:
    if request.param == "memory":
        return MemoryTypingState(ttl=2.0)
    url = request.getfixturevalue("redis_url")
    return RedisTypingState(url, prefix=request.getfixturevalue("redis_prefix"), ttl=2.0)


# --- Sockets and transitions ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_first_socket_brings_the_user_online_and_a_second_does_not(
    state: PresenceState,
) -> None:
    first = await state.socket_opened(user_id=1, socket_id="tab-1")
    second = await state.socket_opened(user_id=1, socket_id="tab-2")

    assert first is not None and first.is_online and first.user_id == 1
    assert second is None
    assert await state.socket_count(user_id=1) == 2


@pytest.mark.asyncio
async def test_user_stays_online_until_their_last_socket_closes(state: PresenceState) -> None:
    opened = await state.socket_opened(user_id=1, socket_id="tab-1")
    await state.socket_opened(user_id=1, socket_id="tab-2")

    assert await state.socket_closed(user_id=1, socket_id="tab-1") is None
    last = await state.socket_closed(user_id=1, socket_id="tab-2")

    assert opened is not None and last is not None
    assert not last.is_online and last.version > opened.version
    assert await state.socket_count(user_id=1) == 0


@pytest.mark.asyncio
async def test_closing_an_unknown_or_closed_socket_is_no_transition(state: PresenceState) -> None:
    await state.socket_opened(user_id=1, socket_id="tab-1")
    assert await state.socket_closed(user_id=1, socket_id="tab-1") is not None

    assert await state.socket_closed(user_id=1, socket_id="tab-1") is None
    assert await state.socket_closed(user_id=2, socket_id="never") is None


@pytest.mark.asyncio
async def test_users_are_counted_apart(state: PresenceState) -> None:
    assert await state.socket_opened(user_id=1, socket_id="a") is not None
    assert await state.socket_opened(user_id=2, socket_id="b") is not None
    assert await state.socket_closed(user_id=1, socket_id="a") is not None
    assert await state.socket_count(user_id=2) == 1


@pytest.mark.asyncio
async def test_sweep_forgets_expired_sockets_and_reports_users_left_with_none(
    state: PresenceState,
) -> None:
    now = time.time()
    # given: user 1 has a dead socket and a live one, user 2 only a dead one
    await state.socket_opened(user_id=1, socket_id="dead-1", now=now - 2 * TTL)
    await state.socket_opened(user_id=1, socket_id="live-1", now=now)
    await state.socket_opened(user_id=2, socket_id="dead-2", now=now - 2 * TTL)

    # when
    gone = await state.sweep(now=now)

    # then: only user 2 went offline, once
    assert [(t.user_id, t.is_online) for t in gone] == [(2, False)]
    assert await state.sweep(now=now) == []
    assert await state.socket_count(user_id=1) == 1
    assert await state.socket_count(user_id=2) == 0


@pytest.mark.asyncio
async def test_heartbeat_keeps_a_socket_past_its_first_expiry(state: PresenceState) -> None:
    now = time.time()
    await state.socket_opened(user_id=1, socket_id="tab", now=now)

    assert await state.heartbeat(sockets=[(1, "tab")], now=now + TTL - 1) == []

    assert await state.sweep(now=now + TTL + 1) == []
    assert await state.socket_count(user_id=1) == 1


@pytest.mark.asyncio
async def test_heartbeat_never_brings_back_a_closed_or_swept_socket(state: PresenceState) -> None:
    now = time.time()
    await state.socket_opened(user_id=1, socket_id="closed", now=now)
    await state.socket_closed(user_id=1, socket_id="closed")
    await state.socket_opened(user_id=2, socket_id="swept", now=now - 2 * TTL)
    await state.sweep(now=now)

    missing = await state.heartbeat(sockets=[(1, "closed"), (2, "swept")], now=now)

    assert missing == [(1, "closed"), (2, "swept")]
    assert await state.socket_count(user_id=1) == 0
    assert await state.socket_count(user_id=2) == 0


@pytest.mark.asyncio
async def test_versions_increase_with_every_transition(state: PresenceState) -> None:
    versions = []
    for _ in range(3):
        opened = await state.socket_opened(user_id=1, socket_id="tab")
        closed = await state.socket_closed(user_id=1, socket_id="tab")
        assert opened is not None and closed is not None
        versions += [opened.version, closed.version]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


@pytest.mark.asyncio
async def test_the_sweep_lock_is_held_by_one_at_a_time(state: PresenceState) -> None:
    assert await state.try_lock(name="sweep", seconds=0.3)
    assert not await state.try_lock(name="sweep", seconds=0.3)
    await asyncio.sleep(0.4)
    assert await state.try_lock(name="sweep", seconds=0.3)


@pytest.mark.services
@pytest.mark.asyncio
async def test_racing_opens_and_closes_report_exactly_one_transition_each(
    redis_url: str, redis_prefix: str
) -> None:
    # Two "processes" (registries on separate connections) race on one user's sockets.
    one = RedisPresenceState(redis_url, prefix=redis_prefix, ttl=TTL)
    two = RedisPresenceState(redis_url, prefix=redis_prefix, ttl=TTL)
    sockets = [f"s{i}" for i in range(20)]

    opened = await asyncio.gather(
        *(
            (one if i % 2 else two).socket_opened(user_id=7, socket_id=s)
            for i, s in enumerate(sockets)
        )
    )
    closed = await asyncio.gather(
        *(
            (two if i % 2 else one).socket_closed(user_id=7, socket_id=s)
            for i, s in enumerate(sockets)
        )
    )

    assert sum(t is not None for t in opened) == 1
    assert sum(t is not None for t in closed) == 1


@pytest.mark.services
@pytest.mark.asyncio
async def test_overlapping_sweeps_report_each_user_once(redis_url: str, redis_prefix: str) -> None:
    state = RedisPresenceState(redis_url, prefix=redis_prefix, ttl=TTL)
    now = time.time()
    for user_id in range(1, 51):
        await state.socket_opened(user_id=user_id, socket_id="dead", now=now - 2 * TTL)

    results = await asyncio.gather(*(state.sweep(now=now, limit=7) for _ in range(10)))
    results += [await state.sweep(now=now)]

    users = sorted(t.user_id for batch in results for t in batch)
    assert users == list(range(1, 51))


# --- Typing --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_typists_are_listed_once_and_repeats_are_not_changes(typing: TypingState) -> None:
    now = time.time()
    first = await typing.start(room_id=5, user_id=1, now=now)
    repeat = await typing.start(room_id=5, user_id=1, now=now + 1)
    second = await typing.start(room_id=5, user_id=2, now=now + 1.1)

    assert first is not None and first.user_ids == [1]
    assert repeat is None
    assert second is not None and second.user_ids == [1, 2]
    assert await typing.typists(room_id=5, now=now + 1.2) == [1, 2]


@pytest.mark.asyncio
async def test_stop_drops_a_typist_at_once(typing: TypingState) -> None:
    now = time.time()
    await typing.start(room_id=5, user_id=1, now=now)
    await typing.start(room_id=5, user_id=2, now=now)

    stopped = await typing.stop(room_id=5, user_id=1, now=now + 0.1)
    again = await typing.stop(room_id=5, user_id=1, now=now + 0.1)

    assert stopped is not None and stopped.user_ids == [2]
    assert again is None


@pytest.mark.asyncio
async def test_stop_many_reports_a_change_per_room_that_changed(typing: TypingState) -> None:
    now = time.time()
    await typing.start(room_id=5, user_id=1, now=now)
    await typing.start(room_id=5, user_id=2, now=now)
    await typing.start(room_id=6, user_id=1, now=now)

    changes = await typing.stop_many(pairs=[(5, 1), (6, 1), (7, 1), (5, 3)], now=now + 0.1)

    assert sorted((c.room_id, c.user_ids) for c in changes) == [(5, [2]), (6, [])]
    assert await typing.typists(room_id=5, now=now + 0.1) == [2]


@pytest.mark.asyncio
async def test_stop_from_sync_code(typing: TypingState) -> None:
    await typing.start(room_id=5, user_id=1)

    change = await asyncio.to_thread(typing.stop_sync, room_id=5, user_id=1)

    assert change is not None and change.user_ids == []


@pytest.mark.asyncio
async def test_typists_expire_two_seconds_after_their_last_start(typing: TypingState) -> None:
    now = time.time()
    await typing.start(room_id=5, user_id=1, now=now)
    await typing.start(room_id=5, user_id=1, now=now + 1)  # pushes the expiry to now + 3
    await typing.start(room_id=6, user_id=2, now=now)

    at_2_5 = await typing.expire(now=now + 2.5)
    at_3_5 = await typing.expire(now=now + 3.5)

    assert [(c.room_id, c.user_ids) for c in at_2_5] == [(6, [])]
    assert [(c.room_id, c.user_ids) for c in at_3_5] == [(5, [])]
    assert await typing.expire(now=now + 10) == []


@pytest.mark.asyncio
async def test_a_start_after_expiry_is_a_change_even_before_the_check(
    typing: TypingState,
) -> None:
    now = time.time()
    await typing.start(room_id=5, user_id=1, now=now)

    again = await typing.start(room_id=5, user_id=1, now=now + 2.5)

    assert again is not None and again.user_ids == [1]


@pytest.mark.services
@pytest.mark.asyncio
async def test_each_expiry_is_reported_by_one_checker(redis_url: str, redis_prefix: str) -> None:
    typing = RedisTypingState(redis_url, prefix=redis_prefix, ttl=2.0)
    now = time.time()
    for room_id in range(1, 21):
        await typing.start(room_id=room_id, user_id=1, now=now)

    results = await asyncio.gather(*(typing.expire(now=now + 3, limit=3) for _ in range(10)))
    results += [await typing.expire(now=now + 3)]

    rooms = sorted(c.room_id for batch in results for c in batch)
    assert rooms == list(range(1, 21))


# --- Timings --------------------------------------------------------------------------------------


def test_default_timings_meet_the_contract(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        "PRESENCE_SOCKET_TTL_SECONDS",
        "PRESENCE_HEARTBEAT_SECONDS",
        "PRESENCE_SWEEP_INTERVAL_SECONDS",
        "PRESENCE_BROADCAST_DELAY_SECONDS",
        "TYPING_TTL_SECONDS",
    ]:
        monkeypatch.delenv(name, raising=False)
        if hasattr(settings, name):
            delattr(settings, name)

    # A dead process's sockets are forgotten within 60 s, and announced right after.
    assert conf.socket_ttl() + conf.sweep_interval() + conf.broadcast_delay() < 60
    # A live socket gets at least two heartbeats in before it would expire.
    assert conf.heartbeat_interval() * 2 < conf.socket_ttl()
    # Offline is announced well within 1 s of the last socket closing.
    assert conf.broadcast_delay() <= 0.5
    assert conf.typing_ttl() == 2.0
