"""Socket requests that arrive together, handled by one call on Channels' database thread.

Channels runs all ORM work of a process on one thread, one call after another. A burst of
requests of the same kind (many sockets sending messages at once) then costs one thread hop,
one connection checkout and one transaction each. A `Coalescer` gathers the requests that
arrive while its previous call runs and hands them to the next call together; each caller
gets its own result. Alone, a request goes at once: batching adds no wait.
"""

import asyncio
import inspect
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from channels.db import database_sync_to_async

Request = TypeVar("Request")
Result = TypeVar("Result")


@dataclass
class _Pending(Generic[Request, Result]):
    requests: list[tuple[Request, "asyncio.Future[Result]"]] = field(default_factory=list)
    worker: "asyncio.Task[None] | None" = None


class Coalescer(Generic[Request, Result]):
    """Runs `handle_many(requests) -> results` (one result per request, in order): a sync
    function on the database thread, or a coroutine function on the event loop (requests that
    need one round trip elsewhere, e.g. to Redis)."""

    def __init__(
        self,
        handle_many: Callable[[Sequence[Request]], Sequence[Result]]
        | Callable[[Sequence[Request]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int = 64,
    ) -> None:
        self._handle_many: Callable[[Sequence[Request]], Awaitable[Sequence[Result]]] = (
            handle_many
            if inspect.iscoroutinefunction(handle_many)
            else database_sync_to_async(handle_many)
        )
        self._max_batch = max_batch
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pending[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, request: Request) -> Result:
        """`request`'s result, handled with whatever else arrives meanwhile."""
        loop = asyncio.get_running_loop()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = _Pending()
        future: asyncio.Future[Result] = loop.create_future()
        pending.requests.append((request, future))
        if pending.worker is None or pending.worker.done():
            pending.worker = loop.create_task(self._work(pending))
        return await future

    async def _work(self, pending: _Pending[Request, Result]) -> None:
        while pending.requests:
            batch = pending.requests[: self._max_batch]
            del pending.requests[: self._max_batch]
            try:
                results = await self._handle_many([request for request, _ in batch])
            except Exception as error:  # e.g. the database is down: every caller hears it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # its caller may have gone (socket closed)
                    future.set_result(result)
