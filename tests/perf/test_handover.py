"""Sync code hands what it sends to the server's event loop: in one wake-up inside a block."""

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from travelsite import realtime


@pytest.fixture
def server_loop() -> Iterator[tuple[asyncio.AbstractEventLoop, list[Any]]]:
    """A running loop bound as the server's, on its own thread; its thread-safe calls counted."""
    loop = asyncio.new_event_loop()
    wakeups: list[Any] = []
    call_soon_threadsafe = loop.call_soon_threadsafe

    def counted(callback: Any, *args: Any, **kwargs: Any) -> Any:
        wakeups.append(callback)
        return call_soon_threadsafe(callback, *args, **kwargs)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(_bind(loop), loop).result(5)
    loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
    try:
        yield loop, wakeups
    finally:
        loop.call_soon_threadsafe = call_soon_threadsafe  # type: ignore[method-assign]
        asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        realtime._loop, realtime._outbox = None, None


async def _bind(loop: asyncio.AbstractEventLoop) -> None:
    realtime.bind_event_loop(loop)


async def _cancel_the_rest() -> None:
    """The bound loop's outbox sender runs forever: cancel it before the loop stops."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def run_in_order(seen: list[str], count: int) -> None:
    async def note(label: str) -> None:
        seen.append(label)

    for n in range(count):
        assert realtime.run_soon(note(f"task {n}"))


def wait_for(seen: list[str], count: int) -> None:
    deadline = time.monotonic() + 5
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_inside_one_handover_everything_goes_in_one_wake_up_in_order(
    server_loop: tuple[asyncio.AbstractEventLoop, list[Any]],
) -> None:
    _loop, wakeups = server_loop
    seen: list[str] = []

    with realtime.one_handover():
        run_in_order(seen, 3)
        with realtime.one_handover():  # nested blocks hand over with the outer one
            run_in_order(seen, 1)
        assert wakeups == [] and seen == []  # nothing handed over yet

    wait_for(seen, 4)
    assert seen == ["task 0", "task 1", "task 2", "task 0"]
    assert len(wakeups) == 1


def test_outside_a_block_each_goes_at_once(
    server_loop: tuple[asyncio.AbstractEventLoop, list[Any]],
) -> None:
    _loop, wakeups = server_loop
    seen: list[str] = []

    run_in_order(seen, 3)

    wait_for(seen, 3)
    assert seen == ["task 0", "task 1", "task 2"]
    assert len(wakeups) == 3
