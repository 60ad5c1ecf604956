"""A guard in daphne's WebSocket protocol against clients that stop reading.

Daphne writes every event to the socket's transport, and Twisted buffers what the kernel will
not take yet, without limit: a client that stops reading (a frozen tab, a stalled mobile
network) would grow the server's memory by everything sent to it. Before each write this guard
looks at the bytes still buffered for that connection; past WS_MAX_BUFFERED_BYTES it drops the
connection at once (its buffers are freed). The client reconnects and catches up with `sync`,
so nothing acknowledged is lost to it.

Installed by travelsite/asgi.py, i.e. in the daphne process only.
"""

import logging
from typing import Any

from django.conf import settings

from travelsite import metrics

logger = logging.getLogger(__name__)


def buffered_bytes(transport: Any) -> int:
    """Bytes written to a Twisted TCP transport and not yet taken by the kernel."""
    data = getattr(transport, "dataBuffer", b"")
    return (
        len(data)
        - int(getattr(transport, "offset", 0))
        + int(getattr(transport, "_tempDataLen", 0))
    )


def install_slow_consumer_guard() -> None:
    from daphne.ws_protocol import WebSocketProtocol

    if getattr(WebSocketProtocol, "_slow_consumer_guard", False):
        return
    original_send = WebSocketProtocol.serverSend
    limit = settings.WS_MAX_BUFFERED_BYTES

    def guarded_send(self: Any, content: Any, binary: bool = False) -> None:
        transport = getattr(self, "transport", None)
        if transport is not None and buffered_bytes(transport) > limit:
            if not getattr(self, "_dropped_as_slow", False):
                self._dropped_as_slow = True
                metrics.WS_SLOW_CONSUMERS_DROPPED.inc()
                logger.warning(
                    "dropping a WebSocket client that stopped reading (%s)", self.client_addr
                )
                self.dropConnection(abort=True)
            return
        original_send(self, content, binary)

    WebSocketProtocol.serverSend = guarded_send
    WebSocketProtocol._slow_consumer_guard = True
