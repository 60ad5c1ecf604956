"""Headless Chromium for the browser tests (Debian's chromium; no browser can be downloaded)."""

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from django.db import connections
from playwright.sync_api import Browser, Page, WebSocketRoute, sync_playwright

from tests.conftest import DaphneServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

T = TypeVar("T")


@pytest.fixture(scope="module")
def browser(daphne_server: DaphneServer) -> Iterator[Browser]:
    """Chromium for a module's tests.

    Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls in a
    thread with a running loop; the tests' own setup queries are safe, so they are allowed here.
    Depends on `daphne_server` so that server starts (and reads its environment) first.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def off_loop(fn: Callable[[], T]) -> T:
    """Run `fn` in a thread without Playwright's event loop, so the events it sends on commit
    reach the channel layer (async_to_sync refuses a thread whose loop is running)."""

    def run() -> T:
        try:
            return fn()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def save_screenshot(page: Page, name: str) -> None:
    """Write docs/screenshots/<name> when SAVE_SCREENSHOTS=1 (the README shows them)."""
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(400)  # opening animations
        page.screenshot(path=str(SCREENSHOTS / name))


class AckHolder:
    """A WebSocket route (`context.route_web_socket(..., holder.route)`) that keeps back every
    `ack` the server sends, and lets everything else through; `release()` sends one on."""

    def __init__(self) -> None:
        self.held: list[tuple[WebSocketRoute, str]] = []

    def route(self, socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()

        def from_server(frame: str | bytes) -> None:
            if isinstance(frame, str) and frame.startswith('{"type":"ack",'):
                self.held.append((socket, frame))
            else:
                socket.send(frame)

        server.on_message(from_server)

    def wait_for(self, page: Page, count: int, timeout_s: float = 10) -> None:
        """Until `count` acks are held: an ack follows the commit's flush to disk, so it can
        come after the room's event has shown (Playwright delivers frames while it waits)."""
        deadline = time.monotonic() + timeout_s
        while len(self.held) < count and time.monotonic() < deadline:
            page.wait_for_timeout(20)
        assert len(self.held) == count

    def release(self) -> None:
        socket, frame = self.held.pop(0)
        socket.send(frame)
