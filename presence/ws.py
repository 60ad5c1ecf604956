"""WebSocket frame handlers of this app (see travelsite/sockets.py and docs/websocket.md).

Presence and typing need to know who shares a room, which only chat knows, and this app never
imports chat: their handlers and lifecycle hooks live in chat/presence_ws.py, on top of
presence.services.
"""

from travelsite.sockets import FrameHandler, LifecycleHook

HANDLERS: dict[str, FrameHandler] = {}
ON_CONNECT: list[LifecycleHook] = []
ON_DISCONNECT: list[LifecycleHook] = []
