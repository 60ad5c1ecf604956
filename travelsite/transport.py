"""A guard in daphne's WebSocket protocol against clients that stop reading.

Daphne writes every event to the socket's transport, and Twisted buffers what the kernel will
not take yet, without limit: a client that stops reading (a frozen tab, a stalled mobile
network) would grow the server's memory by everything sent to it. Before each write this guard
looks at the bytes still buffered for that connection; past WS_MAX_BUFFERED_BYTES it drops the
connection at once (its buffers are freed). The client reconnects and catches up with `sync`,
so nothing acknowledged is lost to it.

Installed by travelsite/asgi.py, i.e. in the daphne process only, with the frame writers below.
"""

import asyncio
import logging
from functools import partial
from typing import Any

from django.conf import settings

from travelsite import metrics
from travelsite.queues import LightQueue

logger = logging.getLogger(__name__)


def buffered_bytes(transport: Any) -> int:
    """Bytes written to a Twisted TCP transport and not yet taken by the kernel."""
    data = getattr(transport, "dataBuffer", b"")
    return (
        len(data)
        - int(getattr(transport, "offset", 0))
        + int(getattr(transport, "_tempDataLen", 0))
    )


def _drop_slow(protocol: Any) -> None:
    """Drop a connection whose client stopped reading (once), freeing its buffers."""
    if not getattr(protocol, "_dropped_as_slow", False):
        protocol._dropped_as_slow = True
        metrics.WS_SLOW_CONSUMERS_DROPPED.inc()
        logger.warning(
            "dropping a WebSocket client that stopped reading (%s)", protocol.client_addr
        )
        protocol.dropConnection(abort=True)


def install_slow_consumer_guard() -> None:
    from daphne.ws_protocol import WebSocketProtocol

    if getattr(WebSocketProtocol, "_slow_consumer_guard", False):
        return
    original_send = WebSocketProtocol.serverSend
    limit = settings.WS_MAX_BUFFERED_BYTES

    def guarded_send(self: Any, content: Any, binary: bool = False) -> None:
        transport = getattr(self, "transport", None)
        if transport is not None and buffered_bytes(transport) > limit:
            _drop_slow(self)
            return
        original_send(self, content, binary)

    WebSocketProtocol.serverSend = guarded_send
    WebSocketProtocol._slow_consumer_guard = True


# --- Writing pre-framed events straight to a connection ---------------------------------------
# A room's event goes to every socket of the room in the same bytes: a server's WebSocket frames
# are not masked, so the frame is built once per event (`text_frame`) and written to each
# connection's transport as it is. This skips, per recipient, Channels' queue and consumer
# dispatch, the ASGI send and autobahn's framing (bench/README.md, "where the time goes").

#: The scope key under which daphne's connection writer is handed to the consumer.
FRAME_WRITER_SCOPE_KEY = "travelsite.frame_writer"


def text_frame(text: str) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455 section 5.2) carrying `text`."""
    payload = text.encode("utf-8")
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 1 << 16:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload


class FrameWriter:
    """Writes ready-made frames to one daphne WebSocket connection, from its event loop."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    def takes_raw_frames(self) -> bool:
        """False when autobahn must frame this connection's messages (compressed, or mid-way)."""
        protocol = self.protocol
        return (
            protocol._perMessageCompress is None
            and protocol.send_state == protocol.SEND_STATE_GROUND
            and protocol.state != protocol.STATE_CONNECTING
        )

    def write(self, frame: bytes) -> None:
        """Write `frame` (see `takes_raw_frames`); dropped if the connection is closing.

        A client that stopped reading is dropped (the slow-consumer guard above).
        """
        protocol = self.protocol
        transport = protocol.transport
        if protocol.state != protocol.STATE_OPEN or transport is None:
            return
        buffered = buffered_bytes(transport)
        if buffered > settings.WS_MAX_BUFFERED_BYTES:
            _drop_slow(protocol)
        elif protocol.send_queue:
            protocol.sendData(frame)  # after what autobahn has queued, in order
        elif buffered == 0 and _plain_tcp(transport):
            _send_now(transport, frame)
        else:
            transport.write(frame)


def _plain_tcp(transport: Any) -> bool:
    """A Twisted TCP connection, open, without TLS: its socket can be written to directly."""
    return (
        not getattr(transport, "TLS", True)
        and getattr(transport, "connected", False)
        and not getattr(transport, "disconnecting", True)
        and not getattr(transport, "_writeDisconnected", True)
        and getattr(transport, "socket", None) is not None
    )


def _send_now(transport: Any, frame: bytes) -> None:
    """Send on the socket at once, as asyncio's transports do; Twisted buffers what is left.

    Twisted's `write` always buffers and registers the socket for writing, then writes on the
    next loop turn: per frame, two `epoll_ctl` calls and a callback. With nothing buffered (the
    caller checks) a direct send keeps the order and costs one system call.
    """
    try:
        sent = transport.socket.send(frame)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        transport.write(frame)  # let Twisted see the error and close the connection
        return
    if sent < len(frame):
        transport.write(frame[sent:])


def install_frame_writers() -> None:
    """Hand each WebSocket consumer a FrameWriter for its connection, in its scope.

    This replaces daphne's `Server.create_application` (daphne 4.2) with the same steps, but
    for two changes: the scope carries the writer, and the input queue is a LightQueue (see
    travelsite/queues.py: each socket keeps it for its whole life).
    """
    from daphne.server import Server

    if getattr(Server, "_frame_writers", False):
        return

    def create_application(self: Any, protocol: Any, scope: dict[str, Any]) -> Any:
        assert "application_instance" not in self.connections[protocol]
        if scope.get("type") == "websocket":
            scope[FRAME_WRITER_SCOPE_KEY] = FrameWriter(protocol)
        input_queue: LightQueue[dict[str, Any]] = LightQueue()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=input_queue.get, send=partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop()
        )
        return input_queue

    Server.create_application = create_application
    Server._frame_writers = True
