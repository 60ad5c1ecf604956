"""The Coalescer: requests arriving together are handled by one call, each gets its own result."""

import asyncio
import threading
from collections.abc import Sequence

import pytest

from travelsite.batching import Coalescer

# The Coalescer runs its calls through `database_sync_to_async`, which touches the connections.
pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_requests_arriving_together_share_a_call_and_keep_their_results() -> None:
    calls: list[list[int]] = []
    release = threading.Event()

    def double_all(requests: Sequence[int]) -> list[int]:
        calls.append(list(requests))
        release.wait(5)
        return [2 * r for r in requests]

    coalescer = Coalescer(double_all)
    first = asyncio.ensure_future(coalescer.submit(1))
    await asyncio.sleep(0.05)  # the first call is running: the rest queue behind it
    rest = [asyncio.ensure_future(coalescer.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0.05)
    release.set()

    assert await first == 2
    assert [await r for r in rest] == [4, 6, 8]
    assert calls == [[1], [2, 3, 4]]


async def test_a_failing_call_fails_each_of_its_requests_and_not_the_next() -> None:
    def fail_on_boom(requests: Sequence[str]) -> list[str]:
        if "boom" in requests:
            raise RuntimeError("database down")
        return list(requests)

    coalescer = Coalescer(fail_on_boom)
    with pytest.raises(RuntimeError, match="database down"):
        await coalescer.submit("boom")
    assert await coalescer.submit("fine") == "fine"


async def test_batches_are_capped() -> None:
    sizes: list[int] = []

    def record(requests: Sequence[int]) -> list[int]:
        sizes.append(len(requests))
        return list(requests)

    coalescer = Coalescer(record, max_batch=3)
    results = await asyncio.gather(*(coalescer.submit(n) for n in range(8)))

    assert results == list(range(8))
    assert max(sizes) <= 3 and sum(sizes) == 8


async def test_an_async_handler_runs_on_the_event_loop_and_batches_too() -> None:
    calls: list[list[int]] = []
    threads: set[int] = set()
    release = asyncio.Event()

    async def double_all(requests: Sequence[int]) -> list[int]:
        calls.append(list(requests))
        threads.add(threading.get_ident())
        await release.wait()
        return [2 * r for r in requests]

    coalescer = Coalescer(double_all)
    first = asyncio.ensure_future(coalescer.submit(1))
    await asyncio.sleep(0.01)
    rest = [asyncio.ensure_future(coalescer.submit(n)) for n in (2, 3)]
    await asyncio.sleep(0.01)
    release.set()

    assert [await first, *[await r for r in rest]] == [2, 4, 6]
    assert calls == [[1], [2, 3]]
    assert threads == {threading.get_ident()}
