"""A queue for one consumer per connection, a few hundred bytes instead of asyncio.Queue's ~4 KiB.

Every WebSocket holds two queues for its whole life: daphne's input queue (frames from the
client) and the channel layer's queue of its channel. asyncio.Queue allocates four deques and
an Event up front (~3.8 KiB), which made up a fifth of the memory of an idle socket. This one
keeps a deque only while something is queued. It offers what those two users call: `put_nowait`,
`get`, `qsize`, `empty`; it is unbounded, like theirs. (`peek` and `get_nowait` hand what is
queued to a direct receiver, travelsite/channel_layer.py.)
"""

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class LightQueue(Generic[T]):
    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: T) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> T:
        while not self._items:
            if self._waiter is None or self._waiter.done():
                self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def peek(self) -> T:
        """The next item, left in the queue (IndexError when empty)."""
        if not self._items:
            raise IndexError("peek from an empty queue")
        return self._items[0]

    def get_nowait(self) -> T:
        """The next item, taken (IndexError when empty)."""
        if not self._items:
            raise IndexError("get from an empty queue")
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items
