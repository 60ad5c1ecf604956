"""The one place that talks to the channel layer.

Services decide *what* happened and *who* should hear of it; this module encodes the event once
and hands it to the channel layer for each group, after the surrounding transaction commits (so
no socket ever hears of a row that was rolled back, and nothing is announced before it is
readable). Consumers only forward the pre-encoded text to their socket.
"""

import asyncio
import contextlib
import contextvars
import json
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from travelsite import metrics

logger = logging.getLogger(__name__)

#: The channel-layer message type every socket consumer handles (`realtime_event`).
EVENT_TYPE = "realtime.event"


#: Every staff member's sockets (staff see everyone's presence and the support queue).
STAFF_GROUP = "staff"


def user_group(user_id: int) -> str:
    """Every socket of one user, on every process."""
    return f"user.{user_id}"


def room_group(room_id: int) -> str:
    """Every socket that joined one chat room."""
    return f"room.{room_id}"


def encode(event: dict[str, Any]) -> str:
    return json.dumps(event, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def layer_message(event: dict[str, Any], **meta: Any) -> dict[str, Any]:
    """The channel-layer message carrying `event`, encoded once for every recipient."""
    return _carrying([encode(event)], meta)


def layer_message_of_texts(texts: Sequence[str], **meta: Any) -> dict[str, Any]:
    """One channel-layer message carrying events already encoded (`encode`), each delivered
    as its own frame: an event that goes out in many different messages is encoded once."""
    return _carrying(list(texts), meta)


def _carrying(texts: list[str], meta: dict[str, Any]) -> dict[str, Any]:
    """The channel-layer message carrying encoded events (`event_texts` reads both forms)."""
    if len(texts) == 1:
        return {"type": EVENT_TYPE, "text": texts[0], **meta}
    return {"type": EVENT_TYPE, "texts": texts, **meta}


def event_texts(message: dict[str, Any]) -> list[str]:
    """The encoded events a channel-layer message carries, in order."""
    texts = message.get("texts")
    return list(texts) if texts is not None else [message["text"]]


async def asend(groups: Iterable[str], event: dict[str, Any], **meta: Any) -> None:
    """Send `event` to every socket in `groups` now (from async code)."""
    await asend_each([(list(groups), event)], **meta)


#: A batch of different events: each to its own groups.
Batch = Sequence[tuple[Sequence[str], dict[str, Any]]]

#: How many group sends a batch keeps in flight at once.
BATCH_CONCURRENCY = 50


async def asend_each(batch: Batch, **meta: Any) -> None:
    """Send each event of `batch` to its groups, several at a time (from async code).

    Delivery is best effort: a failed send is logged, and what was stored is recovered by
    clients with `sync`.
    """
    await asend_messages(_layer_messages(batch, meta))


def _layer_messages(batch: Batch, meta: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(group, channel-layer message) for each group `batch` sends to: the group's events,
    in order, in one message (each still its own frame); groups in the order they first appear.

    A store batch of eight messages in one room is then one publish, one decode per process
    and one write per socket, not eight. Each event is encoded once, whatever its groups.
    Order is kept within a group; events of one batch to different groups were sent at the
    same moment, and a socket in both may hear them grouped.
    """
    by_group: dict[str, list[str]] = {}
    for groups, event in batch:
        text = encode(event)
        for group in dict.fromkeys(groups):
            by_group.setdefault(group, []).append(text)
    return [(group, _carrying(texts, meta)) for group, texts in by_group.items()]


#: Messages per pipelined round trip to Redis (pub/sub layer), or per concurrent chunk.
SEND_CHUNK = 500


async def asend_messages(sends: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Send prepared channel-layer messages (`layer_message`), each to its group, in order.

    With the pub/sub layer the sends are pipelined (one round trip per chunk); with other
    layers they run several at a time.
    """
    layer = get_channel_layer()
    if layer is None or not sends:
        return
    send_many = getattr(layer, "group_send_many", None)
    if send_many is not None:
        for start in range(0, len(sends), SEND_CHUNK):
            chunk = sends[start : start + SEND_CHUNK]
            try:
                await send_many(chunk)
            except Exception:
                metrics.LAYER_SEND_FAILURES.inc(len(chunk))
                logger.exception("sending %d events failed", len(chunk))
        return

    async def one(group: str, message: dict[str, Any]) -> None:
        try:
            await layer.group_send(group, message)
        except Exception:
            metrics.LAYER_SEND_FAILURES.inc()
            logger.exception("group_send to %s failed", group)

    for start in range(0, len(sends), BATCH_CONCURRENCY):
        chunk = sends[start : start + BATCH_CONCURRENCY]
        await asyncio.gather(*(one(group, message) for group, message in chunk))


# --- Sending from sync code (services) -------------------------------------------------------
# In a server process, services run in Channels' database thread while the sockets live on the
# event loop. Waiting there for every group send would hold the one database thread hostage to
# Redis round trips, so once a socket has bound the loop, sync sends are queued to one sender
# task on it and the service returns at once. One task keeps them in the order they were sent
# (a room's messages stay in order). Elsewhere (tests, scripts, workers) sends are made in place.

_loop: asyncio.AbstractEventLoop | None = None
_outbox: "asyncio.Queue[tuple[Batch, dict[str, Any]]] | None" = None


def bind_event_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Route this process' sync sends through `loop` (called by each socket; once is enough)."""
    global _loop, _outbox
    if _loop is loop:
        return
    _loop = loop
    _outbox = asyncio.Queue()
    loop.create_task(_deliver_outbox(_outbox))


async def _deliver_outbox(outbox: "asyncio.Queue[tuple[Batch, dict[str, Any]]]") -> None:
    while True:
        queued = [await outbox.get()]
        while not outbox.empty():  # everything queued meanwhile goes in the same round trip
            queued.append(outbox.get_nowait())
        sends: list[tuple[str, dict[str, Any]]] = []
        for batch, meta in queued:
            try:
                sends.extend(_layer_messages(batch, meta))
            except Exception:  # one bad event must not stop the others
                metrics.LAYER_SEND_FAILURES.inc()
                logger.exception("could not encode a batch of %d events", len(batch))
        await asend_messages(sends)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running this code (code run by a loop, e.g. chat.store), if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _bound_loop_elsewhere() -> asyncio.AbstractEventLoop | None:
    """The bound loop, if it runs and this is not its thread."""
    loop = _loop
    if loop is None or not loop.is_running() or loop.is_closed() or _running_loop() is loop:
        return None
    return loop


_handovers = threading.local()


@contextlib.contextmanager
def one_handover() -> Iterator[None]:
    """Hand everything sent (and run soon) inside this block to the loop in one wake-up.

    Each hand-over from a thread to the loop writes to the loop's wake-up pipe and makes the
    two threads trade the GIL; a batch of stored messages hands over a few things per message
    (its event, its unread announcement, typing). Inside the block they are kept, in order,
    and handed over together when it ends.
    """
    if getattr(_handovers, "pending", None) is not None:
        yield  # nested: the outer block hands over
        return
    pending: list[tuple[Any, tuple[Any, ...]]] = []
    _handovers.pending = pending
    try:
        yield
    finally:
        _handovers.pending = None
        loop = _bound_loop_elsewhere()
        if pending and loop is not None:
            loop.call_soon_threadsafe(_run_all, pending, context=contextvars.Context())


def _run_all(calls: list[tuple[Any, tuple[Any, ...]]]) -> None:
    for function, args in calls:
        function(*args)


def _hand_over(loop: asyncio.AbstractEventLoop, function: Any, *args: Any) -> None:
    pending = getattr(_handovers, "pending", None)
    if pending is not None:
        pending.append((function, args))
    else:
        # A fresh context: the caller's (Channels' database thread) would make the task look
        # as if it ran inside that thread, and its own database calls would then refuse to run.
        loop.call_soon_threadsafe(function, *args, context=contextvars.Context())


def run_soon(coroutine: Any) -> bool:
    """Run `coroutine` on the bound loop without waiting; False (and closed) when none is bound.

    Called by code running on a loop, it runs on that loop.
    """
    if (running := _running_loop()) is not None:
        running.create_task(coroutine)
        return True
    loop = _bound_loop_elsewhere()
    if loop is None:
        coroutine.close()
        return False
    _hand_over(loop, loop.create_task, coroutine)
    return True


def send_each(batch: Batch, **meta: Any) -> None:
    """Send each event of `batch` to its groups: queued to the bound loop, or now."""
    if (running := _running_loop()) is not None:  # code running on a loop (chat.store)
        if _outbox is not None and running is _loop:
            _outbox.put_nowait((list(batch), meta))
        else:
            running.create_task(asend_each(batch, **meta))
        return
    loop = _bound_loop_elsewhere()
    if loop is not None and _outbox is not None:
        _hand_over(loop, _outbox.put_nowait, (list(batch), meta))
        return
    async_to_sync(asend_each)(batch, **meta)


def send_prepared(sends: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Send prepared channel-layer messages now, from sync code without a bound loop."""
    async_to_sync(asend_messages)(sends)


def send(groups: Iterable[str], event: dict[str, Any], **meta: Any) -> None:
    """Send `event` to every socket in `groups` now (from sync code)."""
    send_each([(list(groups), event)], **meta)


def send_on_commit(groups: Iterable[str], event: dict[str, Any], **meta: Any) -> None:
    """Send `event` once the current transaction commits (at once outside a transaction)."""
    send_each_on_commit([(list(groups), event)], **meta)


def send_each_on_commit(batch: Batch, **meta: Any) -> None:
    """Send each event of `batch` to its groups once the transaction commits.

    For per-recipient events (unread counts, notifications): one trip into the event loop for
    the whole batch instead of one per recipient.
    """
    items = [(list(groups), event) for groups, event in batch]
    if items:
        transaction.on_commit(lambda: send_each(items, **meta), robust=True)
