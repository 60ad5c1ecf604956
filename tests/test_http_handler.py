"""HTTP through the ASGI entry point: Django's middleware and view in one thread hop."""

import asyncio
import json
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator

from travelsite.http import SyncChainASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


async def get(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """One GET through a fresh handler: {status, headers (lower-case names), body}."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    communicator = ApplicationCommunicator(SyncChainASGIHandler(), scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait()
    names = {name.lower(): value for name, value in start["headers"]}
    return {"status": start["status"], "headers": names, "body": body}


def test_the_middleware_chain_runs_sync_in_one_go() -> None:
    handler = SyncChainASGIHandler()
    assert not asyncio.iscoroutinefunction(handler._middleware_chain)  # type: ignore[attr-defined]


def test_an_api_call_without_credentials_is_a_json_401() -> None:
    response = asyncio.run(get("/api/chat/rooms"))
    assert response["status"] == 401
    assert "detail" in json.loads(response["body"])


def test_a_page_sets_its_csrf_cookie_and_security_headers() -> None:
    response = asyncio.run(get("/accounts/login/"))
    assert response["status"] == 200
    assert b"csrftoken=" in response["headers"][b"set-cookie"]
    assert response["headers"][b"x-frame-options"] == b"DENY"
    assert b"<form" in response["body"]


def test_static_files_are_served() -> None:
    response = asyncio.run(get("/static/js/realtime.js"))
    assert response["status"] == 200
    assert b"WebSocket" in response["body"]
