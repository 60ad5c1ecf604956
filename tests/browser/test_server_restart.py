"""The server restarts under an open page: the page says so, reconnects and misses nothing."""

import signal
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from chat import services
from tests.browser.conftest import off_loop
from tests.browser.test_chat_widget import PASSWORD, make_user, open_conversation
from tests.conftest import DaphneServer

pytestmark = [pytest.mark.services, pytest.mark.browser]


def test_restart_shows_the_banner_and_a_message_sent_meanwhile_appears_once(
    browser: Browser, daphne_factory: Callable[..., DaphneServer], transactional_db: None
) -> None:
    server = daphne_factory()
    port = server.port
    alice: User = make_user("alice", "Alice", "Smith")
    bob: User = make_user("bob", "Bob", "Jones")
    room, _ = services.direct_room_get_or_create(user=alice, other_user_id=bob.pk)

    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector('body[data-realtime="open"]')
    chat = open_conversation(page, "Bob Jones")
    log = chat.get_by_role("log")

    # the server dies under the page
    server.stop(signal.SIGKILL)
    page.wait_for_selector('body[data-realtime="reconnecting"]')
    expect(page.get_by_role("status").filter(has_text="Reconnecting")).to_be_visible()

    # Bob writes while it is down (through another process: stored, nobody online hears it)
    def bob_sends() -> Any:
        return services.message_send(user=bob, room_id=room.pk, text="Sent during the outage")

    off_loop(bob_sends)

    # the server comes back on the same address; the page reconnects and catches up, once
    daphne_factory(port=port)
    page.wait_for_selector('body[data-realtime="open"]', timeout=30_000)
    expect(log.get_by_text("Sent during the outage")).to_have_count(1)
    expect(page.get_by_role("status").filter(has_text="Reconnecting")).to_be_hidden()
    page.wait_for_timeout(1000)  # a late duplicate would show by now
    expect(log.get_by_text("Sent during the outage")).to_have_count(1)
    page.close()
