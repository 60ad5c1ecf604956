"""What a WebSocket frame handler may do with the socket it serves.

Each app keeps its frame handlers in its own `ws.py` as `HANDLERS = {"type": handler}` and
handlers see the socket only through this protocol, so they stay testable and the consumer stays
a thin shell (parse, dispatch, forward).
"""

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from django.contrib.auth.models import User


class Socket(Protocol):
    #: The signed-in user (handlers only run for signed-in sockets).
    user: User
    #: This socket's channel-layer name.
    channel_name: str
    #: Rooms this socket has joined (ids), kept by the chat handlers.
    joined_rooms: set[int]

    async def send_event(self, event: dict[str, Any]) -> None:
        """Send one event to this socket only."""

    async def join_group(self, group: str) -> None:
        """Receive the events sent to `group` from now on."""

    async def leave_group(self, group: str) -> None:
        """Stop receiving the events sent to `group`."""


FrameHandler = Callable[[Socket, dict[str, Any]], Awaitable[None]]
LifecycleHook = Callable[[Socket], Awaitable[None]]
