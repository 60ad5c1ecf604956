"""channels-redis' pub/sub layer, made to recover its subscriptions after Redis comes back.

In channels-redis 4.3 a shard's receive loop logs connection errors and keeps polling, but once
the connection is gone its subscriptions are not renewed, so every socket of the process would
stay deaf after a Redis restart. Here the receive loop, after an error, opens a new connection
and subscribes again to everything the process had subscribed to, retrying until Redis answers
(tests/faults/test_redis_outage.py). Events published while Redis was down are lost, as with
any at-most-once layer; clients fill the gap with `sync`.

It also lets a consumer take group messages directly (`set_direct_receiver`): a group message
is decoded once and handed to each local member's receiver, synchronously, in the order it came,
instead of being queued once per member for Channels to decode and dispatch one by one. What a
receiver declines (returns False) is queued as before.

Group messages go to the sending process' own members first, when sent, not after a trip
through Redis; Redis carries them to the other processes (`group_send_many`).
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
    _wrap_close,
)
from channels_redis.utils import _close_redis, create_pool, decode_hosts

from travelsite.queues import LightQueue
from travelsite.redis_lane import RedisLane

logger = logging.getLogger(__name__)

#: Takes a decoded group message for one local channel; True if it handled it.
DirectReceiver = Callable[[dict[str, Any]], bool]

RECONNECT_DELAY_SECONDS = 0.5

#: The key naming the sending layer in each group message (see `group_send_many`).
ORIGIN_KEY = "__origin"


class ResilientShard(RedisSingleShardConnection):
    _redis: Any
    _pubsub: Any
    _subscribed_to: set[str]
    #: Publishes go on a lane of their own; the subscriptions keep channels-redis' connection.
    _lane: RedisLane | None = None

    async def _do_receiving(self) -> None:
        while True:
            try:
                if self._pubsub is not None and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=0.1
                    )
                    self._receive_message(message)
                elif self._pubsub is None and self._subscribed_to:
                    await self._resubscribe()
                else:
                    await asyncio.sleep(0.1)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as error:
                logger.warning("channel layer lost Redis (%s); resubscribing", error)
                await asyncio.sleep(RECONNECT_DELAY_SECONDS)
                await self._resubscribe()

    def _receive_message(self, message: Any) -> None:
        if message is None:
            return
        name = message["channel"]
        if isinstance(name, bytes):
            name = name.decode()
        data = message["data"]
        layer = self.channel_layer
        queue = layer.channels.get(name)
        if queue is not None:
            queue.put_nowait(data)
            return
        if not layer.groups.get(name):
            return
        decoded = layer.channel_layer.deserialize(data)
        if decoded.get(ORIGIN_KEY) == layer.origin:
            return  # this process' own: its members had it when it was sent
        layer.deliver_locally(name, decoded, data)

    async def publish(self, channel: str, message: bytes) -> None:
        await self.publish_many([(channel, message)])

    async def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        """PUBLISH each (channel, data) in order, in one write, on this shard's Redis lane
        (travelsite.redis_lane: about half the CPU of a redis-py pipeline, or less)."""
        if self._lane is None:
            self._lane = RedisLane(create_pool(self.host))
        await self._lane.execute_many([("PUBLISH", channel, data) for channel, data in items])

    async def flush(self) -> None:
        await super().flush()
        lane, self._lane = self._lane, None
        if lane is not None:
            await lane.close()

    async def _resubscribe(self) -> None:
        """A new connection, subscribed to everything this shard had (or None and retry)."""
        async with self._lock:
            old = self._redis
            self._redis = None
            self._pubsub = None
            if old is not None:
                with contextlib.suppress(Exception):
                    await _close_redis(old)
            try:
                self._ensure_redis()
                assert self._pubsub is not None
                if self._subscribed_to:
                    await self._pubsub.subscribe(*self._subscribed_to)
                logger.info("channel layer resubscribed to %d channels", len(self._subscribed_to))
            except Exception:
                self._redis = None
                self._pubsub = None
                await asyncio.sleep(RECONNECT_DELAY_SECONDS)


class ResilientLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, hosts: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(hosts, *args, **kwargs)
        self._shards = [ResilientShard(host, self) for host in decode_hosts(hosts)]
        self.direct_receivers: dict[str, DirectReceiver] = {}
        #: Which process (and loop) sent a group message: see `group_send_many`.
        self.origin = secrets.token_hex(8)

    async def _subscribe_to_channel(self, channel: str) -> None:
        self.channels[channel] = LightQueue()  # one per socket: see travelsite/queues.py
        await self._get_shard(channel).subscribe(channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self.group_send_many([(group, message)])

    async def group_send_many(self, sends: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """`group_send` of several messages, in order, one round trip per Redis shard.

        Local first: this process' own members of each group get the message at once, and the
        other processes through Redis. Each message carries this layer's origin, so that when
        it comes back from Redis (this process is subscribed to the groups its sockets are in)
        it is not delivered twice.
        """
        by_shard: dict[ResilientShard, list[tuple[str, bytes]]] = {}
        for group, message in sends:
            channel = self._get_group_channel_name(group)
            data = self.channel_layer.serialize({**message, ORIGIN_KEY: self.origin})
            self.deliver_locally(channel, dict(message), data)
            by_shard.setdefault(self._get_shard(channel), []).append((channel, data))
        for shard, items in by_shard.items():
            await shard.publish_many(items)

    def deliver_locally(self, group_channel: str, message: dict[str, Any], data: bytes) -> None:
        """Hand a group message to this process' members of the group: to each one's direct
        receiver (all sharing `message`, decoded once), else to its queue (`data`)."""
        for channel in list(self.groups.get(group_channel, ())):
            receiver = self.direct_receivers.get(channel)
            if receiver is not None:
                try:
                    if receiver(message):
                        continue
                except Exception:
                    logger.exception("direct receiver of %s failed; queueing", channel)
            queue = self.channels.get(channel)
            if queue is not None:
                queue.put_nowait(data)

    def set_direct_receiver(self, channel: str, receiver: DirectReceiver | None) -> None:
        """Hand `channel`'s group messages to `receiver` as they arrive (None: queue them).

        What was queued before goes to `receiver` first, so that no later message overtakes
        it (a socket subscribes to its user's group before its handshake ends); the first one
        it declines, and what follows, stay queued for the consumer's dispatch.
        """
        if receiver is None:
            self.direct_receivers.pop(channel, None)
            return
        queue = self.channels.get(channel)
        while queue is not None and not queue.empty():
            if not receiver(self.channel_layer.deserialize(queue.peek())):
                break
            queue.get_nowait()
        self.direct_receivers[channel] = receiver

    async def flush(self) -> None:
        self.direct_receivers = {}
        await super().flush()


class ResilientPubSubChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer whose per-loop layers renew their subscriptions (see above)."""

    def _get_layer(self) -> Any:
        loop = asyncio.get_running_loop()
        try:
            layer = self._layers[loop]
        except KeyError:
            layer = ResilientLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer
