"""Structured logs: one JSON object per line (settings LOGGING uses it when LOG_FORMAT=json).

Each line carries `time` (ISO 8601, UTC), `level`, `logger`, `message` and every field passed
with `extra=` (e.g. `logger.info("socket closed", extra={"user_id": 7, "code": 4401})`), plus
`exc_info` / `stack_info` when present. Log ids, never message contents or credentials: extra
fields named like a credential (SENSITIVE_KEYS) are written as "[redacted]" as a safety net.
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
CORE_FIELDS = ("time", "level", "logger", "message")
SENSITIVE_KEYS = frozenset(
    {"token", "auth_token", "password", "secret", "authorization", "cookie", "session_key"}
)
REDACTED = "[redacted]"


def _jsonable(value: Any) -> Any:
    """A JSON-friendly stand-in for values json cannot encode."""
    if isinstance(value, HttpRequest):
        # Django's request loggers pass the request: method and path only (no query string,
        # headers or body, which may hold credentials).
        return {"method": value.method, "path": value.path}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _encodable(value: Any) -> Any:
    """`value` if json can encode it (with _jsonable), else its string stand-in."""
    try:
        json.dumps(value, default=_jsonable)
    except (TypeError, ValueError):
        return _jsonable(value)
    return value


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRIBUTES or key.startswith("_"):
                continue
            name = key if key not in CORE_FIELDS else f"extra_{key}"
            payload[name] = REDACTED if key.lower() in SENSITIVE_KEYS else value
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exc_info"] = record.exc_text
        if record.stack_info:
            payload["stack_info"] = self.formatStack(record.stack_info)
        try:
            return json.dumps(payload, default=_jsonable, ensure_ascii=False)
        except (TypeError, ValueError):  # e.g. non-string dict keys or a circular structure
            return json.dumps(
                {key: _encodable(value) for key, value in payload.items()},
                default=_jsonable,
                ensure_ascii=False,
            )
