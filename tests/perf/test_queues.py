"""LightQueue: asyncio.Queue's put_nowait/get, in order, waking the getter, surviving cancels."""

import asyncio
import sys

import pytest

from travelsite.queues import LightQueue

pytestmark = pytest.mark.asyncio


async def test_items_come_out_in_order_and_a_waiting_get_wakes() -> None:
    queue: LightQueue[int] = LightQueue()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done()

    queue.put_nowait(1)
    queue.put_nowait(2)
    assert await waiting == 1
    assert queue.qsize() == 1
    assert await queue.get() == 2
    assert queue.empty()


async def test_a_cancelled_get_loses_nothing() -> None:
    queue: LightQueue[str] = LightQueue()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    queue.put_nowait("kept")
    assert await asyncio.wait_for(queue.get(), 1) == "kept"


async def test_an_idle_queue_is_small() -> None:
    idle: LightQueue[int] = LightQueue()
    assert sys.getsizeof(idle) < 100  # asyncio.Queue: ~3.8 KiB with its deques and Event
