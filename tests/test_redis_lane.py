"""The Redis lane (travelsite.redis_lane), against the real Redis: answers matched to their
commands in order, errors to their own callers, and a lost, killed or late connection replaced."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from travelsite import redis_lane
from travelsite.redis_lane import LaneScript, RedisLane

pytestmark = [pytest.mark.services, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def lane(redis_url: str) -> AsyncIterator[RedisLane]:
    made = RedisLane(aioredis.ConnectionPool.from_url(redis_url), timeout=0.5)
    yield made
    await made.close()


def unique_key() -> str:
    return f"test-lane:{uuid.uuid4().hex}"


async def test_concurrent_commands_each_get_their_own_answer(lane: RedisLane) -> None:
    words = [f"word-{i}".encode() for i in range(200)]

    answers = await asyncio.gather(*(lane.execute("ECHO", word) for word in words))

    assert answers == words


async def test_an_error_answer_goes_to_its_caller_only(lane: RedisLane, redis_url: str) -> None:
    key = unique_key()
    await lane.execute("SET", key, "not a number")

    results = await asyncio.gather(
        lane.execute("ECHO", "before"),
        lane.execute("INCR", key),
        lane.execute("ECHO", "after"),
        return_exceptions=True,
    )

    assert results[0] == b"before" and results[2] == b"after"
    assert isinstance(results[1], redis_errors.ResponseError)
    redis.Redis.from_url(redis_url).delete(key)


async def test_execute_many_answers_in_order_and_raises_the_first_error(lane: RedisLane) -> None:
    key = unique_key()

    # Redis' own replies: redis-py's client would turn b"OK" into True.
    assert await lane.execute_many([("SET", key, 1), ("INCR", key), ("GET", key)]) == [
        b"OK",
        2,
        b"2",
    ]
    with pytest.raises(redis_errors.ResponseError):
        await lane.execute_many([("INCR", key), ("HGET", key, "field"), ("INCR", key)])
    assert await lane.execute("GET", key) == b"4"  # both INCRs ran
    await lane.execute("DEL", key)


async def test_a_script_redis_does_not_know_is_loaded_and_run(lane: RedisLane) -> None:
    # A source no one has loaded (a restarted Redis has forgotten every script).
    script = LaneScript(f"-- {uuid.uuid4().hex}\nreturn {{KEYS[1], ARGV[1]}}")

    assert await lane.run_script(script, ["k"], ["v"]) == [b"k", b"v"]
    assert await lane.script(script.source)(keys=["k2"], args=["v2"]) == [b"k2", b"v2"]


async def test_a_batch_of_a_script_redis_does_not_know_is_run_once_loaded(
    lane: RedisLane,
) -> None:
    key = unique_key()
    script = LaneScript(f"-- {uuid.uuid4().hex}\nreturn redis.call('INCR', KEYS[1])")

    answers = await lane.run_script_many(script, [([key], []), ([key], []), ([key], [])])

    assert answers == [1, 2, 3]  # NOSCRIPT ran nothing: each call ran once
    await lane.execute("DEL", key)


async def test_a_killed_connection_is_replaced_for_the_next_command(
    lane: RedisLane, redis_url: str
) -> None:
    client_id = await lane.execute("CLIENT", "ID")
    redis.Redis.from_url(redis_url).client_kill_filter(_id=client_id)
    await asyncio.sleep(0.05)

    assert await lane.execute("ECHO", "still here") == b"still here"
    assert await lane.execute("CLIENT", "ID") != client_id


async def test_a_late_answer_fails_its_command_and_is_never_given_to_the_next(
    lane: RedisLane,
) -> None:
    # BLPOP on an empty list answers (nil) after 1 s, past the lane's 0.5 s.
    with pytest.raises(redis_errors.TimeoutError):
        await lane.execute("BLPOP", unique_key(), 1)

    assert await lane.execute("ECHO", "next") == b"next"
    await asyncio.sleep(0.7)  # the late answer would have come by now
    assert await lane.execute("ECHO", "later") == b"later"


async def test_a_cancelled_caller_leaves_the_answers_in_step(lane: RedisLane) -> None:
    slow = asyncio.ensure_future(lane.execute("BLPOP", unique_key(), 0.2))
    await asyncio.sleep(0.05)
    after = asyncio.ensure_future(lane.execute("ECHO", "mine"))
    slow.cancel()

    assert await after == b"mine"
    assert await lane.execute("ECHO", "and mine") == b"and mine"


async def test_redis_unreachable_is_a_connection_error() -> None:
    dead = RedisLane(aioredis.ConnectionPool.from_url("redis://127.0.0.1:1/0"))

    with pytest.raises(redis_errors.ConnectionError):
        await dead.execute("PING")


async def test_each_loop_has_its_own_lane(redis_url: str) -> None:
    here = redis_lane.lane(redis_url)

    assert redis_lane.lane(redis_url) is here
    assert redis_lane.lane(redis_url, decode_responses=True) is not here
    assert await redis_lane.lane(redis_url, decode_responses=True).execute("ECHO", "x") == "x"
    await here.close()
    await redis_lane.lane(redis_url, decode_responses=True).close()
