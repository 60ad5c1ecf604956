"""HTTP through the ASGI entry point: Django's middleware and view in one thread hop."""

import asyncio
import json
import threading
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator

from travelsite.http import SyncChainASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


async def get(path: str, *, host: bytes = b"localhost") -> dict[str, Any]:
    return await call("GET", path, host=host)


async def call(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    host: bytes = b"localhost",
    handler: SyncChainASGIHandler | None = None,
) -> dict[str, Any]:
    """One request (through a fresh handler unless given one): {status, headers (lower-case
    names), body}."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", host),
            (b"content-length", str(len(body)).encode()),
            *(headers or []),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    communicator = ApplicationCommunicator(handler or SyncChainASGIHandler(), scope)
    await communicator.send_input({"type": "http.request", "body": body})
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


def test_a_request_body_reaches_the_view() -> None:
    response = asyncio.run(
        call(
            "POST",
            "/api/auth/token",
            body=json.dumps({"username": "nobody"}).encode(),
            headers=[(b"content-type", b"application/json")],
        )
    )
    assert response["status"] == 400
    assert json.loads(response["body"]) == {"password": ["This field is required."]}


def test_a_request_for_an_unknown_host_is_400() -> None:
    response = asyncio.run(get("/api/chat/rooms", host=b"evil.example"))
    assert response["status"] == 400


def test_each_request_gives_its_database_connection_back(settings: Any) -> None:
    """More requests than the pool holds: a connection kept by a finished request would make
    one of them wait for the pool and fail."""
    from rest_framework.authtoken.models import Token

    from tests.factories import UserFactory

    token = Token.objects.create(user=UserFactory.create())
    pool_size = settings.DATABASES["default"].get("OPTIONS", {}).get("pool", {}).get("max_size", 5)

    async def many() -> list[int]:
        statuses = []
        for _ in range(pool_size + 5):
            response = await call(
                "GET", "/api/chat/rooms", headers=[(b"authorization", f"Token {token}".encode())]
            )
            statuses.append(response["status"])
        return statuses

    assert asyncio.run(many()) == [200] * (pool_size + 5)


def handler_recording_threads(
    threads: list[threading.Thread], *, wait_for: threading.Barrier | None = None
) -> SyncChainASGIHandler:
    """A handler that notes which thread handles each request (after `wait_for`, if given)."""
    handler = SyncChainASGIHandler()
    respond = handler._respond

    def recording(scope: dict[str, Any], body_file: Any) -> Any:
        threads.append(threading.current_thread())  # kept: ids of live objects differ
        if wait_for is not None:
            wait_for.wait()
        return respond(scope, body_file)

    handler._respond = recording  # type: ignore[method-assign]
    return handler


def test_requests_one_after_another_are_handled_on_one_kept_thread() -> None:
    threads: list[threading.Thread] = []
    handler = handler_recording_threads(threads)

    async def three() -> list[int]:
        return [(await call("GET", "/api/chat/rooms", handler=handler))["status"] for _ in "abc"]

    assert asyncio.run(three()) == [401, 401, 401]
    assert len(threads) == 3 and len(set(map(id, threads))) == 1
    assert threading.current_thread() not in threads  # not the event loop's thread


def test_requests_at_the_same_time_get_a_thread_each_and_both_are_kept() -> None:
    threads: list[threading.Thread] = []
    both_running = threading.Barrier(2, timeout=5)  # one shared thread would never get past
    handler = handler_recording_threads(threads, wait_for=both_running)

    async def two_at_once() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                call("GET", "/api/chat/rooms", handler=handler),
                call("GET", "/api/chat/rooms", handler=handler),
            )
        )

    assert [r["status"] for r in asyncio.run(two_at_once())] == [401, 401]
    assert len(set(map(id, threads))) == 2
    assert len(handler._idle_threads) == 2
