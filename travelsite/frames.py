"""Parsing and answering WebSocket frames: the JSON envelope every event travels in."""

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FrameError(Exception):
    """A frame the server will not act on; becomes an `error` frame and the socket stays open."""

    code: str
    detail: str
    ref: Any = None
    retry_after: float | None = None

    def as_event(self) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "error",
            "code": self.code,
            "detail": self.detail,
            "ref": self.ref,
        }
        if self.retry_after is not None:
            event["retryAfter"] = self.retry_after
        return event


def parse_frame(text: str | None, data: bytes | None, *, max_bytes: int) -> dict[str, Any]:
    """The frame as a dict with a string `type`, or FrameError saying what is wrong with it."""
    if text is None:
        raise FrameError("bad_frame", "Binary frames are not supported; send JSON text.")
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise FrameError("too_large", f"Frames are limited to {max_bytes} bytes.")
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        raise FrameError(
            "bad_json", "The frame is not valid JSON (or nested too deeply)."
        ) from None
    if not isinstance(frame, dict):
        raise FrameError("bad_frame", "A frame must be a JSON object.")
    frame_type = frame.get("type")
    if not isinstance(frame_type, str) or not frame_type:
        raise FrameError("bad_frame", "A frame needs a string `type`.", ref=frame.get("clientId"))
    return frame


def frame_ref(frame: dict[str, Any]) -> Any:
    """What an error about `frame` points back to: its clientId, else its type."""
    client_id = frame.get("clientId")
    return client_id if isinstance(client_id, str) and client_id else frame.get("type")


def require_int(frame: dict[str, Any], field: str, *, optional: bool = False) -> int | None:
    """`frame[field]` as a positive int id, or FrameError("invalid")."""
    value = frame.get(field)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise FrameError("invalid", f"`{field}` must be a positive integer.", ref=frame_ref(frame))
    return value


def require_str(frame: dict[str, Any], field: str, *, optional: bool = False) -> str | None:
    """`frame[field]` as a string, or FrameError("invalid")."""
    value = frame.get(field)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise FrameError("invalid", f"`{field}` must be a string.", ref=frame_ref(frame))
    return value
