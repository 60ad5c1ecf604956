"""The chat widget in real browsers: two users, two browser contexts, one live daphne.

Like tests/browser/test_pages.py, everything runs on the test database through `daphne_server`,
so each test requests `transactional_db`. Set SAVE_SCREENSHOTS=1 to (re)write the screenshots
in docs/screenshots/.
"""

import datetime
import re
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Locator,
    Page,
    WebSocketRoute,
    expect,
)

from chat import services
from chat.models import ChatRoom
from tests.browser.conftest import AckHolder, off_loop, save_screenshot
from tests.conftest import DaphneServer, api_client_for
from travel.models import Booking, Departure, Tour

pytestmark = [pytest.mark.services, pytest.mark.browser]

PASSWORD = "widget-pass-123"
XSS = "<img src=x onerror=alert(1)>"

OpenPage = Callable[..., Page]
T = TypeVar("T")


@pytest.fixture
def open_page(browser: Browser, daphne_server: DaphneServer) -> Iterator[OpenPage]:
    """`open_page(user, width=1280, height=800, route_socket=None)`: a signed-in page in its own
    browser context (`route_socket`: Playwright's WebSocket route, to hold frames back)."""
    contexts: list[BrowserContext] = []

    def open_(
        user: User,
        width: int = 1280,
        height: int = 800,
        route_socket: Callable[[WebSocketRoute], None] | None = None,
    ) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        contexts.append(context)
        if route_socket is not None:  # sees the page's socket frames (before the page opens it)
            context.route_web_socket(re.compile(r"/ws/"), route_socket)
        page = context.new_page()
        page.goto(f"{daphne_server.url}/accounts/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{daphne_server.url}/")
        page.wait_for_selector('body[data-realtime="open"]')
        return page

    yield open_
    for context in contexts:
        context.close()


def make_user(username: str, first: str, last: str, *, is_staff: bool = False) -> User:
    return User.objects.create_user(
        username=username, password=PASSWORD, first_name=first, last_name=last, is_staff=is_staff
    )


@pytest.fixture
def alice(transactional_db: None) -> User:
    return make_user("alice", "Alice", "Smith")


@pytest.fixture
def bob(transactional_db: None) -> User:
    return make_user("bob", "Bob", "Jones")


@pytest.fixture
def direct_room(alice: User, bob: User) -> ChatRoom:
    room, _ = services.direct_room_get_or_create(user=alice, other_user_id=bob.pk)
    return room


@pytest.fixture
def tour(transactional_db: None) -> Tour:
    tour = Tour.objects.create(
        name="Alpine Lakes Trek", destination="Swiss Alps", price=1890, duration_days=8
    )
    start = timezone.localdate() + datetime.timedelta(days=30)
    Departure.objects.create(
        tour=tour, start_date=start, end_date=start + datetime.timedelta(days=7), capacity=10
    )
    return tour


def panel(page: Page) -> Locator:
    return page.locator("#chat-panel")


def open_conversation(page: Page, room_button_name: str) -> Locator:
    """Open the widget and the conversation named `room_button_name`; returns the panel."""
    page.get_by_role("button", name="Chat", exact=True).click()
    dialog = panel(page)
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=room_button_name, exact=True).click()
    expect(dialog.get_by_role("textbox", name="Message")).to_be_focused()
    expect(dialog.get_by_role("log").locator(".chat-loading")).to_have_count(0)
    return dialog


def send(dialog: Locator, text: str) -> None:
    dialog.get_by_role("textbox", name="Message").fill(text)
    dialog.get_by_role("button", name="Send", exact=True).click()


def collect_dialogs(page: Page) -> list[str]:
    seen: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return seen


# --- Two users talking ----------------------------------------------------------------------------


def test_typing_shows_to_the_other_user_and_clears_after_they_stop(
    open_page: OpenPage, alice: User, bob: User, direct_room: ChatRoom
) -> None:
    # given both in their direct room, each seeing it named by the other person
    a, b = open_page(alice), open_page(bob)
    a_chat = open_conversation(a, "Bob Jones")
    b_chat = open_conversation(b, "Alice Smith")
    b_typing = b_chat.get_by_role("status")

    # when Alice types
    a_chat.get_by_role("textbox", name="Message").press_sequentially("Hello th", delay=60)

    # then Bob sees it, and it disappears soon after she stops
    expect(b_typing).to_have_text("Alice is typing...")
    save_screenshot(b, "chat-conversation-typing.png")
    stopped = time.monotonic()
    expect(b_typing).to_have_text("", timeout=4_000)
    assert time.monotonic() - stopped < 4.0
    expect(a_chat.get_by_role("status")).to_have_text("")  # nobody else types


def test_a_sent_message_reaches_the_other_user_and_shows_once_for_the_sender(
    open_page: OpenPage, alice: User, bob: User, direct_room: ChatRoom
) -> None:
    # given Bob online with his widget closed
    a, b = open_page(alice), open_page(bob)
    a_chat = open_conversation(a, "Bob Jones")
    b_badge = b.locator("#chat-badge")
    expect(b_badge).to_be_hidden()

    # when Alice sends
    send(a_chat, "Hello Bob! Ready for the Alps?")

    # then it is hers at once, confirmed, shown exactly once
    a_log = a_chat.get_by_role("log")
    mine = a_log.locator(".chat-msg", has_text="Hello Bob! Ready for the Alps?")
    expect(mine).to_have_count(1)
    expect(mine).not_to_have_class(re.compile("is-sending"))
    expect(mine).to_have_attribute("data-id", re.compile(r"^\d+$"))
    # and Bob's bubble counts it; opening the room shows it and clears the count
    expect(b_badge).to_have_text("1")
    b.get_by_role("button", name="Chat", exact=True).click()
    b_room = panel(b).get_by_role("button", name="Alice Smith", exact=True)
    expect(b_room).to_contain_text("Hello Bob! Ready for the Alps?")
    save_screenshot(b, "chat-rooms-desktop.png")
    b_room.click()
    b_chat = panel(b)
    expect(b_chat.get_by_role("log").get_by_text("Hello Bob! Ready for the Alps?")).to_be_visible()
    expect(b_badge).to_be_hidden()
    send(b_chat, "Absolutely — packing my boots!")
    expect(a_log.get_by_text("Absolutely — packing my boots!")).to_be_visible()
    save_screenshot(a, "chat-conversation-desktop.png")
    time.sleep(0.5)  # the sender's own `message` event has surely arrived by now
    expect(mine).to_have_count(1)
    expect(b_chat.get_by_role("log").locator(".chat-msg")).to_have_count(2)


def test_the_senders_message_shows_as_sent_only_once_its_ack_comes(
    open_page: OpenPage, alice: User, bob: User, direct_room: ChatRoom
) -> None:
    """The room hears a message once it is committed, its sender's `ack` comes once it is on
    disk: the room's `message` may come first, and must not make it "sent"."""
    acks = AckHolder()

    # given Alice's acks held back (the room's events are not)
    a, b = open_page(alice, route_socket=acks.route), open_page(bob)
    a_chat = open_conversation(a, "Bob Jones")
    b_chat = open_conversation(b, "Alice Smith")

    # when she sends
    send(a_chat, "Is the ferry on time?")

    # then Bob has it, and Alice has it in its place, still sending
    expect(b_chat.get_by_role("log").get_by_text("Is the ferry on time?")).to_be_visible()
    mine = a_chat.get_by_role("log").locator(".chat-msg", has_text="Is the ferry on time?")
    expect(mine).to_have_attribute("data-id", re.compile(r"^\d+$"))
    expect(mine).to_have_class(re.compile("is-sending"))
    expect(mine).to_contain_text("Sending…")
    acks.wait_for(a, 1)

    # and once the ack comes, it is sent, shown once
    acks.release()
    expect(mine).not_to_have_class(re.compile("is-sending"))
    expect(mine).not_to_contain_text("Sending…")
    expect(mine).to_have_count(1)


def test_a_message_with_html_shows_as_text_and_runs_nothing(
    open_page: OpenPage, alice: User, bob: User, direct_room: ChatRoom
) -> None:
    # given
    a, b = open_page(alice), open_page(bob)
    a_dialogs, b_dialogs = collect_dialogs(a), collect_dialogs(b)
    a_chat = open_conversation(a, "Bob Jones")
    b_chat = open_conversation(b, "Alice Smith")

    # when
    send(a_chat, XSS)

    # then both show the text as typed, and no element or script came of it
    for chat in (a_chat, b_chat):
        log = chat.get_by_role("log")
        expect(log.get_by_text(XSS, exact=True)).to_have_count(1)
        expect(log.locator("img")).to_have_count(0)
    b.reload()  # and again when it comes from history and the room list preview
    b.wait_for_selector('body[data-realtime="open"]')
    b_chat = open_conversation(b, "Alice Smith")
    expect(b_chat.get_by_role("log").get_by_text(XSS, exact=True)).to_have_count(1)
    expect(b.locator("#chat img, #chat-panel img")).to_have_count(0)
    time.sleep(0.3)
    assert a_dialogs == b_dialogs == []


def test_scrolling_up_loads_older_messages_keeping_the_view(
    open_page: OpenPage, alice: User, bob: User, direct_room: ChatRoom
) -> None:
    # given more history than the first page holds
    def write_history() -> None:
        for n in range(1, 71):
            services.message_send(user=bob, room_id=direct_room.pk, text=f"Itinerary note {n}")

    off_loop(write_history)
    page = open_page(alice)
    dialog = open_conversation(page, "Bob Jones")
    log = dialog.get_by_role("log")
    expect(log.locator(".chat-msg")).to_have_count(50)
    expect(log.get_by_text("Itinerary note 70", exact=True)).to_be_in_viewport()

    # when the reader scrolls to the top
    scroller = page.locator("#chat-scroll")
    scroller.evaluate("el => { el.scrollTop = 0; }")

    # then the rest arrives above, each message once, and what was on screen stays put
    expect(log.locator(".chat-msg")).to_have_count(70)
    ids = log.locator(".chat-msg").evaluate_all("els => els.map((el) => Number(el.dataset.id))")
    assert ids == sorted(set(ids))
    box = scroller.bounding_box()
    anchor = log.get_by_text("Itinerary note 21", exact=True).bounding_box()
    assert box is not None and anchor is not None
    assert box["y"] <= anchor["y"] < box["y"] + 150
    expect(log.get_by_text("Itinerary note 1", exact=True)).not_to_be_in_viewport()


# --- Layout and keyboard --------------------------------------------------------------------------


def test_open_widget_fills_a_phone_screen_and_escape_closes_it(
    open_page: OpenPage, alice: User, bob: User, direct_room: ChatRoom
) -> None:
    # given
    page = open_page(alice, width=375, height=740)
    off_loop(
        lambda: services.message_send(
            user=bob, room_id=direct_room.pk, text="Hi Alice, see you in Zermatt!"
        )
    )
    expect(page.locator("#chat-badge")).to_have_text("1")  # live, from the `unread` event

    # when
    page.get_by_role("button", name="Chat", exact=True).click()

    # then
    dialog = panel(page)
    expect(dialog).to_be_visible()
    box = dialog.bounding_box()
    assert box is not None
    assert (box["x"], box["width"]) == (0, 375)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    bob_room = dialog.get_by_role("button", name="Bob Jones", exact=True)
    expect(bob_room).to_be_focused()
    expect(bob_room).to_contain_text("Hi Alice, see you in Zermatt!")
    expect(bob_room.locator(".chat-room-unread")).to_have_text("1")
    save_screenshot(page, "chat-rooms-phone.png")
    dialog.get_by_role("button", name="Bob Jones", exact=True).click()
    expect(dialog.get_by_role("log").get_by_text("Hi Alice, see you in Zermatt!")).to_be_visible()
    save_screenshot(page, "chat-conversation-phone.png")

    # and Escape closes it, handing focus back to the bubble
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Chat", exact=True)).to_be_focused()
    expect(page.get_by_role("button", name="Chat", exact=True)).to_have_attribute(
        "aria-expanded", "false"
    )


# --- Presence -------------------------------------------------------------------------------------


def test_presence_dot_turns_to_last_seen_when_the_other_closes_their_last_tab(
    open_page: OpenPage, alice: User, bob: User, direct_room: ChatRoom
) -> None:
    # given Bob online in two tabs, and Alice looking at their room
    b = open_page(bob)
    b_second = b.context.new_page()
    b_second.goto(b.url)
    b_second.wait_for_selector('body[data-realtime="open"]')
    a = open_page(alice)
    a_chat = open_conversation(a, "Bob Jones")
    bob_dot = a_chat.locator(f'#chat-subtitle [data-presence-user="{bob.pk}"]')
    expect(bob_dot).to_have_attribute("aria-label", "Bob Jones — online")
    expect(bob_dot).to_have_attribute("title", "Bob Jones — online")

    # when Bob closes one tab, he stays online; when he closes the last, he is offline
    b_second.close()
    time.sleep(1.5)
    expect(bob_dot).to_have_attribute("aria-label", "Bob Jones — online")
    b.close()

    # then
    expect(bob_dot).to_have_attribute("aria-label", re.compile(r"^Bob Jones — last seen "))
    expect(bob_dot).not_to_have_class(re.compile("is-online"))


# --- Delivery gaps --------------------------------------------------------------------------------


def test_a_message_sent_while_disconnected_appears_once_after_reconnecting(
    open_page: OpenPage, alice: User, bob: User, direct_room: ChatRoom
) -> None:
    # given both in the room, Bob's socket down (and held down)
    a, b = open_page(alice), open_page(bob)
    a_chat = open_conversation(a, "Bob Jones")
    b_chat = open_conversation(b, "Alice Smith")
    send(a_chat, "Before the tunnel")
    expect(b_chat.get_by_role("log").get_by_text("Before the tunnel")).to_be_visible()
    b.evaluate("window.realtime._debugDrop({hold: true})")
    b.wait_for_selector('body[data-realtime="reconnecting"]')

    # when Alice sends meanwhile
    send(a_chat, "Sent while you were in the tunnel")
    expect(
        a_chat.get_by_role("log").locator(".chat-msg", has_text="in the tunnel")
    ).to_have_attribute("data-id", re.compile(r"^\d+$"))
    b_log = b_chat.get_by_role("log")
    expect(b_log.get_by_text("Sent while you were in the tunnel")).to_have_count(0)

    # then after reconnecting Bob sees it, once
    b.evaluate("window.realtime._debugResume()")
    b.wait_for_selector('body[data-realtime="open"]')
    expect(b_log.get_by_text("Sent while you were in the tunnel")).to_have_count(1)
    send(a_chat, "And after")
    expect(b_log.get_by_text("And after")).to_be_visible()
    time.sleep(0.3)
    expect(b_log.locator(".chat-msg")).to_have_count(3)


# --- Support entry --------------------------------------------------------------------------------


def test_ask_about_a_tour_opens_the_support_room_with_the_tour_attached(
    open_page: OpenPage, daphne_server: DaphneServer, alice: User, tour: Tour
) -> None:
    # given
    page = open_page(alice)
    page.goto(f"{daphne_server.url}/tours/{tour.pk}/")
    page.wait_for_selector('body[data-realtime="open"]')

    # when
    page.get_by_role("button", name="Ask us about this tour").click()

    # then the support conversation opens, about the tour
    dialog = panel(page)
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="Support")).to_be_visible()
    expect(dialog.locator("#chat-topic")).to_contain_text("Alpine Lakes Trek")
    expect(dialog.get_by_role("textbox", name="Message")).to_be_focused()
    room = ChatRoom.objects.get(kind=ChatRoom.Kind.SUPPORT, owner=alice)
    assert room.topic == {"type": "tour", "id": tour.pk, "name": "Alpine Lakes Trek"}
    send(dialog, "Is the trek OK for a 10-year-old?")
    expect(dialog.get_by_role("log").locator(".chat-msg")).to_have_attribute(
        "data-id", re.compile(r"^\d+$")
    )
    save_screenshot(page, "chat-support-tour.png")


def test_staff_see_a_support_room_named_by_its_traveller(
    open_page: OpenPage, alice: User, tour: Tour
) -> None:
    # given Alice asked about a tour and a staff member answered
    staff = make_user("sam", "Sam", "Staff", is_staff=True)

    def converse() -> None:
        topic = {"type": "tour", "id": tour.pk}
        room, _ = services.support_room_open_about(user=alice, topic=topic)
        services.message_send(user=alice, room_id=room.pk, text="Hello?")
        services.message_send(user=staff, room_id=room.pk, text="Hi Alice, how can we help?")

    off_loop(converse)

    # when
    page = open_page(staff)
    dialog = open_conversation(page, "Alice Smith")

    # then
    expect(dialog.locator("#chat-topic")).to_contain_text("Alpine Lakes Trek")
    expect(dialog.get_by_role("log").get_by_text("Hello?")).to_be_visible()


def test_support_topic_is_validated(alice: User, bob: User, tour: Tour) -> None:
    departure = tour.departures.get()
    bobs = Booking.objects.create(user=bob, departure=departure)
    mine = Booking.objects.create(user=alice, departure=departure)
    client = api_client_for(alice)

    def post(topic: object) -> tuple[int, dict[str, object]]:
        response = client.post(
            "/api/chat/rooms", {"kind": "support", "topic": topic}, format="json"
        )
        return response.status_code, response.json()

    assert post({"type": "tour", "id": 999_999})[0] == 404
    assert post({"type": "booking", "id": bobs.pk})[0] == 404
    assert post({"type": "planet", "id": 1})[0] == 400
    assert post({"type": "tour", "id": "1"})[0] == 400
    assert not ChatRoom.objects.filter(kind=ChatRoom.Kind.SUPPORT).exists()
    status, room = post({"type": "booking", "id": mine.pk})
    assert status == 201
    assert room["topic"] == {
        "type": "booking",
        "id": mine.pk,
        "name": f"Alpine Lakes Trek · {departure.start_date:%d %b %Y}",
    }
    assert room["members"] == [{"id": alice.pk, "firstName": "Alice", "lastName": "Smith"}]
