"""A chat client that keeps going through outages: reconnects, rejoins, and records acks."""

import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection

from tests.e2e.wsclient import open_socket, send


@dataclass
class ResilientChatClient:
    ws_url: str
    token: str
    room_id: int
    acked: dict[str, int] = field(default_factory=dict)  # clientId -> message id
    refused: list[str] = field(default_factory=list)  # error codes of refused sends
    received: set[int] = field(default_factory=set)  # message ids from `message` events
    reconnects: int = 0
    ws: ClientConnection | None = None

    def connect(self, deadline: float) -> bool:
        """(Re)connect and join the room before `deadline`; False if it never worked."""
        while time.monotonic() < deadline:
            try:
                self.ws = open_socket(self.ws_url, token=self.token)
                send(self.ws, {"type": "join_room", "roomId": self.room_id})
                while True:
                    frame = json.loads(self.ws.recv(timeout=5))
                    if frame["type"] == "room_joined":
                        return True
                    if frame["type"] == "error":
                        raise ConnectionError(frame["code"])
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidStatus, TimeoutError):
                self.close()
                self.reconnects += 1
                time.sleep(0.3)
        return False

    def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):  # already broken
                self.ws.close()
            self.ws = None

    def healthy(self, deadline: float) -> bool:
        """Connected, joined and able to send (reconnecting as needed) before `deadline`."""
        while time.monotonic() < deadline:
            if self.ws is None and not self.connect(deadline):
                return False
            if self.send_message("probe", timeout=2) == "acked":
                return True
            time.sleep(0.2)
        return False

    def wait_for(self, message_id: int, timeout: float = 5) -> bool:
        """Read frames until the `message` event of `message_id` arrives."""
        deadline = time.monotonic() + timeout
        while message_id not in self.received and time.monotonic() < deadline:
            if self.ws is None:
                return False
            try:
                frame = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            except (ConnectionClosed, OSError, TimeoutError):
                return message_id in self.received
            if frame["type"] == "message":
                self.received.add(frame["message"]["id"])
        return message_id in self.received

    def send_message(self, text: str, timeout: float = 5) -> str:
        """Send one message; returns "acked", "refused:<code>" or "disconnected"."""
        client_id = uuid.uuid4().hex
        if self.ws is None:
            return "disconnected"
        try:
            send(
                self.ws,
                {
                    "type": "send_message",
                    "roomId": self.room_id,
                    "message": text,
                    "clientId": client_id,
                },
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                frame: dict[str, Any] = json.loads(
                    self.ws.recv(timeout=deadline - time.monotonic())
                )
                if frame["type"] == "message":
                    self.received.add(frame["message"]["id"])
                elif frame["type"] == "ack" and frame["clientId"] == client_id:
                    self.acked[client_id] = frame["message"]["id"]
                    return "acked"
                elif frame["type"] == "error" and frame.get("ref") == client_id:
                    self.refused.append(frame["code"])
                    return f"refused:{frame['code']}"
        except (ConnectionClosed, OSError, TimeoutError):
            self.close()
            return "disconnected"
        return "disconnected"
