"""The one WebSocket consumer: one per browser tab (or API client) at /ws/.

It signs the socket in, parses frames, dispatches them to the apps' handlers (`<app>/ws.py`),
and forwards the events services send to its groups. It holds no business rules and writes
nothing itself; see docs/websocket.md for the protocol.
"""

import asyncio
import contextlib
import logging
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError
from redis.exceptions import RedisError

from accounts.selectors import user_summary
from accounts.services import credential_fingerprint
from chat import presence_ws as chat_presence_ws
from chat import unread_ws
from chat import ws as chat_ws
from notifications import ws as notifications_ws
from presence import ws as presence_ws
from travelsite import gc_tuning, metrics, realtime
from travelsite.frames import FrameError, frame_ref, parse_frame, require_str
from travelsite.ratelimit import LocalBucket, RateLimited
from travelsite.sockets import FrameHandler, LifecycleHook, Socket
from travelsite.token_auth import auser_for_token
from travelsite.transport import FRAME_WRITER_SCOPE_KEY, FrameWriter, text_frame

logger = logging.getLogger(__name__)

#: Close code for a socket that did not sign in (in time, or at all).
CLOSE_UNAUTHENTICATED = 4401
#: Close code for a socket that keeps flooding past its frame limit (4000 + 1008, policy).
CLOSE_FLOOD = 4008
#: Close code when a backing service (Redis) is down at sign-in: reconnect later.
CLOSE_UNAVAILABLE = 4503
#: The window in which refused frames are counted towards closing a flooding socket.
FLOOD_WINDOW_SECONDS = 10.0


class RealtimeConsumer(AsyncWebsocketConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user: User | None = None
        self.joined_rooms: set[int] = set()
        self._groups: set[str] = set()
        self._auth_timeout: asyncio.Task[None] | None = None
        self._frame_bucket = LocalBucket(*settings.RATE_LIMITS["ws_frames"])
        self._refused = 0
        self._refused_since = 0.0
        self._counted = False
        #: Fingerprint of the session key or token that signed this socket in (see sign-out).
        self.credential: str | None = None
        #: Writes ready-made frames to this connection (daphne only; see travelsite/transport).
        self._frame_writer: FrameWriter | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, without its `close_old_connections` before every message.

        That call is a round trip through Channels' one database thread per frame received, in
        the queue with every other socket's database work. It matters only for consumers that
        use the ORM on the event loop's side; this one does all its database work through
        `database_sync_to_async`, which closes old connections around each call itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- Connection lifecycle ---------------------------------------------------------------

    async def connect(self) -> None:
        if self.scope.get("token_rejected"):
            await self.close()  # refused at the handshake (HTTP 403)
            return
        user = self.scope.get("user")
        if not (isinstance(user, User) and user.is_authenticated and user.is_active):
            user = None
        available = True
        if user is not None:
            token = self.scope.get("auth_token")
            session = self.scope.get("session")
            secret = token or getattr(session, "session_key", None)
            self.credential = credential_fingerprint(secret) if secret else None
            # Subscribed before the handshake ends: once a client sees its socket open, every
            # event for its user reaches it, so what it loads after "open" misses nothing.
            available = await self._subscribed(user)
        await self.accept()
        realtime.bind_event_loop(asyncio.get_running_loop())
        gc_tuning.collect_between_events(asyncio.get_running_loop())
        self._take_group_messages_directly(True)
        self._counted = True
        metrics.WS_CONNECTIONS.inc()
        metrics.WS_CONNECTS.inc()
        if not available:
            await self.close(code=CLOSE_UNAVAILABLE)
        elif user is not None:
            await self._connected()
        else:
            self._auth_timeout = asyncio.create_task(self._close_if_not_signed_in())

    async def disconnect(self, code: int) -> None:
        self._take_group_messages_directly(False)
        if self._counted:
            self._counted = False
            metrics.WS_CONNECTIONS.dec()
        if self._auth_timeout is not None:
            self._auth_timeout.cancel()
        if self.user is not None:
            for hook in ON_DISCONNECT:
                try:
                    await hook(self._socket())
                except Exception:
                    logger.exception("disconnect hook %s failed", hook)
        for group in list(self._groups):
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(group, self.channel_name)
        self._groups.clear()

    async def _close_if_not_signed_in(self) -> None:
        await asyncio.sleep(settings.WS_AUTH_TIMEOUT_SECONDS)
        if self.user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)

    async def _subscribed(self, user: User) -> bool:
        """Sign the socket in as `user` and subscribe it to what is sent to them (its groups,
        ON_SUBSCRIBE); False when the channel layer is down."""
        self.user = user
        if self._auth_timeout is not None:
            self._auth_timeout.cancel()
            self._auth_timeout = None
        try:
            await self.join_group(realtime.user_group(user.pk))
            for hook in ON_SUBSCRIBE:
                await hook(self._socket())
        except (RedisError, OSError):
            logger.warning("channel layer unavailable; closing socket", exc_info=True)
            return False
        return True

    async def _connected(self) -> None:
        """The hooks of a signed-in socket that announce it (presence)."""
        for hook in ON_CONNECT:
            try:
                await hook(self._socket())
            except Exception:
                logger.exception("connect hook %s failed", hook)

    def _socket(self) -> Socket:
        return self  # `user` is set once signed in

    # --- What handlers may do (travelsite.sockets.Socket) -----------------------------------

    async def join_group(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self._groups.add(group)

    async def leave_group(self, group: str) -> None:
        self._groups.discard(group)
        await self.channel_layer.group_discard(group, self.channel_name)

    async def send_event(self, event: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await self.send(text_data=realtime.encode(event))

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        """Text frames go straight to the connection when they can (see `_receive_direct`)."""
        writer = self._frame_writer
        if text_data is not None and not close and writer is not None and writer.takes_raw_frames():
            writer.write(text_frame(text_data))
            return
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def send_error(self, error: FrameError) -> None:
        metrics.WS_ERRORS.labels(code=error.code).inc()
        await self.send_event(error.as_event())

    async def _flooding(self) -> bool:
        """Take a frame token; answer `rate_limited`, or close a socket that keeps flooding."""
        wait = self._frame_bucket.take()
        if not wait:
            return False
        now = asyncio.get_running_loop().time()
        if now - self._refused_since > FLOOD_WINDOW_SECONDS:
            self._refused, self._refused_since = 0, now
        self._refused += 1
        metrics.RATE_LIMIT_HITS.labels(limit="ws_frames").inc()
        if self._refused > settings.WS_FLOOD_CLOSE_AFTER:
            logger.warning("closing flooding socket of user %s", getattr(self.user, "pk", None))
            await self.close(code=CLOSE_FLOOD)
        else:
            await self.send_error(
                FrameError("rate_limited", "Too many frames.", retry_after=round(wait, 2))
            )
        return True

    # --- Frames from the client -------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        metrics.WS_FRAMES_RECEIVED.inc()
        if await self._flooding():
            return
        try:
            frame = parse_frame(text_data, bytes_data, max_bytes=settings.WS_MAX_FRAME_BYTES)
        except FrameError as error:
            if self.user is None:
                await self.close(code=CLOSE_UNAUTHENTICATED)
            else:
                await self.send_error(error)
            return

        if self.user is None:
            await self._authenticate_first(frame)
            return

        handler = HANDLERS.get(frame["type"])
        try:
            if handler is None:
                raise FrameError(
                    "unknown_type", f"Unknown frame type {frame['type']!r}.", ref=frame_ref(frame)
                )
            await handler(self._socket(), frame)
        except FrameError as error:
            await self.send_error(error)
        except RateLimited as limited:
            await self.send_error(
                FrameError(
                    "rate_limited",
                    str(limited),
                    ref=frame_ref(frame),
                    retry_after=limited.retry_after,
                )
            )
        except (DatabaseError, RedisError, ConnectionError, OSError):
            logger.warning("backing service unavailable for %s", frame["type"], exc_info=True)
            await self.send_error(
                FrameError("unavailable", "Try again shortly.", ref=frame_ref(frame))
            )
        except Exception:
            logger.exception("error handling frame %s", frame["type"])
            await self.send_error(
                FrameError("internal", "Something went wrong.", ref=frame_ref(frame))
            )

    async def _authenticate_first(self, frame: dict[str, Any]) -> None:
        """Before sign-in only `authenticate` is accepted; anything else closes with 4401."""
        token = frame.get("token") if frame["type"] == "authenticate" else None
        user = None
        if isinstance(token, str) and token:
            try:
                user = await auser_for_token(token)
            except DatabaseError:
                await self.send_event(FrameError("unavailable", "Try again shortly.").as_event())
                return
        if user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.credential = credential_fingerprint(str(token))
        if not await self._subscribed(user):
            await self.close(code=CLOSE_UNAVAILABLE)
            return
        await self._connected()
        await self.send_event({"type": "authenticated", "user": user_summary(user)})

    # --- Events from the channel layer ------------------------------------------------------

    def _take_group_messages_directly(self, on: bool) -> None:
        """Write this socket's frames straight to its connection (daphne only), and have the
        channel layer hand its group events to `_receive_direct` (the pub/sub layer only).

        Elsewhere frames go through ASGI and events through Channels' dispatch to
        `realtime_event`, with the same effect.
        """
        set_receiver = getattr(self.channel_layer, "set_direct_receiver", None)
        if on:
            self._frame_writer = self.scope.get(FRAME_WRITER_SCOPE_KEY)
            if self._frame_writer is not None and set_receiver is not None:
                set_receiver(self.channel_name, self._receive_direct)
        else:
            self._frame_writer = None
            if set_receiver is not None:
                set_receiver(self.channel_name, None)

    def _wants(self, message: dict[str, Any]) -> bool:
        """Whether this socket is an audience of a realtime event sent to one of its groups."""
        return message.get("exclude_user") != getattr(self.user, "pk", None)

    def _receive_direct(self, message: dict[str, Any]) -> bool:
        """A group message, in the channel layer's receive loop: write its frames now.

        The frames are built once per message and shared by every local recipient (the layer
        hands all of them the same decoded dict). Anything else (other types, sign-out closes)
        returns False and goes through `realtime_event`.
        """
        writer = self._frame_writer
        if writer is None or message.get("type") != realtime.EVENT_TYPE:
            return False
        if message.get("close_credential") is not None or not writer.takes_raw_frames():
            return False
        if not self._wants(message):
            return True
        frames = message.get(_FRAMES_KEY)
        if frames is None:
            texts = realtime.event_texts(message)
            # Several events in one write: one system call per socket, the frames in order.
            frames = message[_FRAMES_KEY] = (
                b"".join(text_frame(text) for text in texts),
                len(texts),
            )
        writer.write(frames[0])
        self._count_delivered(message, frames[1])
        return True

    def _count_delivered(self, message: dict[str, Any], events: int) -> None:
        metrics.WS_EVENTS_DELIVERED.inc(events)
        if message.get("counts_as") == "notification":
            metrics.NOTIFICATIONS_DELIVERED.inc(events)

    async def realtime_event(self, message: dict[str, Any]) -> None:
        """An event a service sent to one of this socket's groups, already encoded."""
        if not self._wants(message):
            return
        texts = realtime.event_texts(message)
        close_credential = message.get("close_credential")
        if close_credential is not None:
            if close_credential == self.credential:
                for text in texts:
                    await self.send(text_data=text)
                await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        for text in texts:
            await self.send(text_data=text)
        self._count_delivered(message, len(texts))


#: Where a group message keeps its frames once built, for the next local recipient:
#: (the frames' bytes, written together, and how many events they carry).
_FRAMES_KEY = "_frames"


async def handle_authenticate(socket: Socket, frame: dict[str, Any]) -> None:
    """Already signed in (by cookie or header): a token of the same user just confirms it."""
    token = require_str(frame, "token")
    user = await auser_for_token(token or "")
    if user is None or user.pk != socket.user.pk:
        raise FrameError("invalid", "This socket is signed in as another user.", ref="authenticate")
    await socket.send_event({"type": "authenticated", "user": user_summary(socket.user)})


async def handle_ping(socket: Socket, frame: dict[str, Any]) -> None:
    await socket.send_event({"type": "pong"})


HANDLERS: dict[str, FrameHandler] = {
    "authenticate": handle_authenticate,
    "ping": handle_ping,
    **chat_ws.HANDLERS,
    **notifications_ws.HANDLERS,
    **presence_ws.HANDLERS,
    **chat_presence_ws.HANDLERS,
}
#: Before a signed-in socket's handshake ends (or its `authenticated`): what it will hear.
ON_SUBSCRIBE: list[LifecycleHook] = [
    *chat_presence_ws.ON_SUBSCRIBE,
    *unread_ws.ON_SUBSCRIBE,
]
#: Once it is open: what announces it.
ON_CONNECT: list[LifecycleHook] = [
    *presence_ws.ON_CONNECT,
    *chat_presence_ws.ON_CONNECT,
    *chat_ws.ON_CONNECT,
    *unread_ws.ON_CONNECT,
]
ON_DISCONNECT: list[LifecycleHook] = [
    *unread_ws.ON_DISCONNECT,
    *chat_ws.ON_DISCONNECT,
    *chat_presence_ws.ON_DISCONNECT,
    *presence_ws.ON_DISCONNECT,
]
