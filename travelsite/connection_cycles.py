"""Each closed WebSocket connection's objects freed at once, not by a full collection later.

Daphne, autobahn and Twisted leave every WebSocket connection in two reference cycles:

- autobahn resolves the protocol's `is_closed` Deferred with the protocol itself, so once the
  connection has closed, the protocol holds a Deferred that holds the protocol;
- the HTTP request that was upgraded (daphne's `WebRequest`) stays in its `HTTPChannel`'s
  `requests`, and holds the channel.

Reference counting cannot free a cycle, so some 50 objects per connection (the protocol, its
transport, the request, its headers, Deferreds, buffers) wait for the collector. A socket lives
long enough to reach the oldest generation, so that is a full collection. After 2,000 sockets
closed, the next full collection freed about 100,000 objects in 120-190 ms, a stall of every
socket of the process (docs/performance.md, seventeenth session). With both cycles broken,
each connection's objects are freed when it closes, a few microseconds then.

Installed by travelsite/asgi.py, in the daphne process only.
"""

from typing import Any


def install_cycle_breakers() -> None:
    from daphne.http_protocol import WebRequest
    from daphne.ws_protocol import WebSocketProtocol

    if getattr(WebSocketProtocol, "_cycles_broken", False):
        return
    process = WebRequest.process
    connection_lost = WebSocketProtocol.connectionLost

    def process_then_let_go(self: Any) -> None:
        process(self)
        if self.transport is None and self.channel is not None:
            # Upgraded: the connection is the WebSocket protocol's now, and this request,
            # never finished, would stay in its channel's list.
            self.channel.requests.clear()

    def connection_lost_then_let_go(self: Any, reason: Any) -> None:
        connection_lost(self, reason)
        closed = getattr(self, "is_closed", None)
        if closed is not None and closed.called and closed.result is self:
            closed.result = None  # its callbacks have run, with the protocol

    WebRequest.process = process_then_let_go
    WebSocketProtocol.connectionLost = connection_lost_then_let_go
    WebSocketProtocol._cycles_broken = True
