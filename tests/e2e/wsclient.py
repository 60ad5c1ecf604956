"""A small synchronous WebSocket test client over the `websockets` library."""

import json
from typing import Any

from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin


def open_socket(
    url: str, *, cookie: str | None = None, token: str | None = None, origin: str | None = None
) -> ClientConnection:
    headers: dict[str, str] = {}
    if cookie:
        headers["Cookie"] = cookie
    if token:
        headers["Authorization"] = f"Token {token}"
    return connect(
        url,
        additional_headers=headers,
        origin=Origin(origin) if origin else None,
        open_timeout=10,
        close_timeout=2,
        legacy=True,  # a connection object we may use before entering `with`
    )


def send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    ws.send(json.dumps(frame))


def receive(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    frame = json.loads(ws.recv(timeout=timeout))
    assert isinstance(frame, dict)
    return frame


def receive_type(ws: ClientConnection, frame_type: str, timeout: float = 5) -> dict[str, Any]:
    """The next frame of `frame_type`, skipping others (e.g. presence) on the way."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        frame = receive(ws, timeout=max(deadline - time.monotonic(), 0.01))
        if frame.get("type") == frame_type:
            return frame


def ping(ws: ClientConnection) -> None:
    """Round-trip a ping: proves the socket is open and everything before it was handled."""
    send(ws, {"type": "ping"})
    assert receive_type(ws, "pong")["type"] == "pong"
