"""Structured logs: the JSON formatter, and LOG_FORMAT choosing it (travelsite/logging.py)."""

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.test import RequestFactory

from travelsite.logging import JsonFormatter

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.structured")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    parsed = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(item, dict) for item in parsed)
    return parsed


def test_one_json_object_per_line_with_the_core_fields(
    log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = log
    logger.warning("socket of user %s closed\nwith code %s", 7, 4401)
    logger.info("second")
    first, second = lines(stream)
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["level"] == "WARNING"
    assert first["logger"] == "tests.structured"
    assert first["message"] == "socket of user 7 closed\nwith code 4401"
    parsed_time = datetime.fromisoformat(first["time"])
    assert parsed_time.utcoffset() is not None
    assert second["level"] == "INFO"
    assert second["message"] == "second"


def test_extra_fields_are_included(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    logger.info(
        "message stored",
        extra={
            "user_id": 7,
            "room_id": 12,
            "ids": [1, 2],
            "ok": True,
            "when": datetime(2025, 1, 2),
        },
    )
    (line,) = lines(stream)
    assert line["message"] == "message stored"
    assert line["user_id"] == 7
    assert line["room_id"] == 12
    assert line["ids"] == [1, 2]
    assert line["ok"] is True
    assert line["when"] == "2025-01-02T00:00:00"


def test_extra_fields_never_replace_the_core_fields(
    log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = log
    logger.info("real", extra={"level": "fake", "time": "then"})
    (line,) = lines(stream)
    assert line["level"] == "INFO"
    assert line["extra_level"] == "fake"
    assert line["extra_time"] == "then"


def test_credentials_passed_as_extra_are_redacted(
    log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = log
    logger.info("signed in", extra={"user_id": 3, "token": "abc123", "password": "hunter2"})
    text = stream.getvalue()
    assert "abc123" not in text and "hunter2" not in text
    (line,) = lines(stream)
    assert line["token"] == "[redacted]"
    assert line["user_id"] == 3


def test_requests_and_unencodable_values_still_give_valid_json(
    log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = log
    request = RequestFactory().get("/api/chat/messages?token=secret-in-query")
    logger.warning("odd", extra={"request": request, "thing": object(), "keys": {(1, 2): "x"}})
    (line,) = lines(stream)
    assert line["message"] == "odd"
    assert "secret-in-query" not in stream.getvalue()
    assert "thing" in line and "keys" in line


def test_exceptions_are_included_in_the_same_line(
    log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = log
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("handling frame failed", extra={"frame_type": "send_message"})
    (line,) = lines(stream)
    assert line["level"] == "ERROR"
    assert line["frame_type"] == "send_message"
    assert "RuntimeError: boom" in line["exc_info"]


PROBE = """
import logging, django
django.setup()
logging.getLogger("travelsite.probe").warning("probe %s", 1, extra={"user_id": 5})
"""


def run_probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "travelsite.settings"}
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
    )


def test_log_format_json_selects_the_json_formatter() -> None:
    result = run_probe({"LOG_FORMAT": "json"})
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(text) for text in result.stderr.splitlines()]
    assert line["level"] == "WARNING"
    assert line["logger"] == "travelsite.probe"
    assert line["message"] == "probe 1"
    assert line["user_id"] == 5


def test_plain_logs_by_default() -> None:
    result = run_probe({})
    assert result.returncode == 0, result.stderr
    (text,) = result.stderr.splitlines()
    assert text.endswith("WARNING travelsite.probe probe 1")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_an_unknown_log_format_is_refused() -> None:
    result = run_probe({"LOG_FORMAT": "xml"})
    assert result.returncode != 0
    assert "LOG_FORMAT" in result.stderr


@pytest.mark.django_db
def test_a_stored_message_is_logged_by_ids_never_by_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from chat import services
    from tests.factories import StaffFactory

    staff = StaffFactory.create()
    room, _ = services.public_room_create_or_join(user=staff, name="Logged")
    with caplog.at_level(logging.INFO, logger="chat.services"):
        message, _ = services.message_send(user=staff, room_id=room.pk, text="a secret plan")
    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "chat.message"]
    line = json.loads(JsonFormatter().format(record))
    assert line["message_id"] == message.pk
    assert line["room_id"] == room.pk
    assert "a secret plan" not in json.dumps(line)
