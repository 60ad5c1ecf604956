"""WebSocket frame handlers of this app (see travelsite/sockets.py and docs/websocket.md)."""

from travelsite.sockets import FrameHandler, LifecycleHook

HANDLERS: dict[str, FrameHandler] = {}
ON_CONNECT: list[LifecycleHook] = []
ON_DISCONNECT: list[LifecycleHook] = []
