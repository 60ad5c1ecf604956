"""The staff inbox in a real browser: a support question appears live, staff answer it there."""

import datetime
import re

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, Locator, Page, expect

from chat import services as chat_services
from chat.models import ChatRoom
from tests.browser.conftest import AckHolder, off_loop, save_screenshot
from tests.browser.test_pages import PASSWORD, sign_in
from tests.conftest import DaphneServer, api_client_for
from tests.factories import BookingFactory, DepartureFactory, TourFactory

pytestmark = [pytest.mark.services, pytest.mark.browser]

INBOX = "/staff/inbox/"


@pytest.fixture
def staff_member(transactional_db: None) -> User:
    return User.objects.create_user(
        username="sam", password=PASSWORD, first_name="Sam", last_name="Ortiz", is_staff=True
    )


def traveller_named(first: str, last: str) -> User:
    return User.objects.create_user(
        username=first.lower(), password=PASSWORD, first_name=first, last_name=last
    )


def set_topic(room: ChatRoom, name: str) -> None:
    """Rooms carry a topic once chat has it (another change); the inbox shows it if present."""
    if any(field.name == "topic" for field in ChatRoom._meta.get_fields()):
        ChatRoom.objects.filter(pk=room.pk).update(topic={"type": "tour", "id": 1, "name": name})


def earlier_conversations(staff: User) -> None:
    """One room waiting for 12 minutes and one answered, made before the inbox opens."""

    def make() -> None:
        waiting = traveller_named("Carlos", "Mendes")
        room, _ = chat_services.support_room_get_or_create(user=waiting)
        chat_services.message_send(
            user=waiting, room_id=room.pk, text="Can I bring my bike on the Douro tour?"
        )
        ChatRoom.objects.filter(pk=room.pk).update(
            awaiting_staff_since=timezone.now() - datetime.timedelta(minutes=12)
        )
        set_topic(room, "Douro Valley by Bike")
        answered = traveller_named("Dana", "Kim")
        room, _ = chat_services.support_room_get_or_create(user=answered)
        chat_services.message_send(user=answered, room_id=room.pk, text="Thanks, all clear!")
        chat_services.message_send(user=staff, room_id=room.pk, text="Enjoy the trip, Dana!")

    off_loop(make)


def inbox_item(page: Page, name: str) -> Locator:
    return page.locator("#inbox-list > li").filter(has_text=name)


def test_a_new_support_question_appears_live_and_a_reply_ends_the_wait(
    browser: Browser, daphne_server: DaphneServer, staff_member: User
) -> None:
    # given the inbox open, and a traveller with a booking
    earlier_conversations(staff_member)
    traveller = traveller_named("Alice", "Smith")
    tour = TourFactory.create(name="Alpine Lakes Trek", destination="Swiss Alps")
    departure = DepartureFactory.create(tour=tour)
    BookingFactory.create(user=traveller, departure=departure, travellers=2)
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        sign_in(page, daphne_server, staff_member)
        page.get_by_role("link", name="Staff inbox").click()
        page.wait_for_url(f"{daphne_server.url}{INBOX}")
        page.wait_for_selector('body[data-realtime="open"]')
        expect(page.locator("#inbox-list > li")).to_have_count(2)
        expect(page.locator("#inbox-list")).to_have_attribute("aria-live", "polite")
        expect(inbox_item(page, "Carlos Mendes")).to_contain_text("waiting 12 min")
        expect(inbox_item(page, "Alice Smith")).to_have_count(0)

        # when the traveller asks a question in their support room
        def ask() -> int:
            client = api_client_for(traveller)
            room = client.post("/api/chat/rooms", {"kind": "support"}, format="json").json()
            response = client.post(
                "/api/chat/messages",
                {"roomId": room["id"], "message": "Is the lake swim <b>optional</b>?"},
                format="json",
            )
            return response.status_code

        assert off_loop(ask) == 201

        # then it appears without a reload, waiting, after the older waiting question
        item = inbox_item(page, "Alice Smith")
        expect(item).to_contain_text("waiting <1 min")
        expect(item).to_contain_text("Is the lake swim <b>optional</b>?")
        expect(page.locator("#inbox-list > li").nth(1)).to_contain_text("Alice Smith")
        expect(page.locator("#inbox-summary")).to_contain_text("2 waiting")

        # when staff open it
        item.get_by_role("button").click()
        log = page.get_by_role("log")
        expect(log).to_contain_text("Is the lake swim <b>optional</b>?")
        expect(page.get_by_role("heading", name="Alice Smith", level=2)).to_be_visible()
        bookings = page.get_by_role("complementary", name="Bookings")
        expect(bookings).to_contain_text("Alpine Lakes Trek")
        expect(bookings).to_contain_text("2 travellers")

        # and a new message from the traveller arrives while it is open
        def follow_up() -> None:
            room = ChatRoom.objects.get(owner=traveller, kind=ChatRoom.Kind.SUPPORT)
            chat_services.message_send(user=traveller, room_id=room.pk, text="And towels?")

        off_loop(follow_up)
        expect(log.get_by_text("And towels?")).to_have_count(1)

        # when staff reply from the inbox
        page.get_by_label("Your reply").fill("Yes, it's optional, and towels are provided.")
        page.get_by_role("button", name="Reply", exact=True).click()

        # then the reply shows once, and the room stops waiting
        expect(log.get_by_text("Yes, it's optional, and towels are provided.")).to_have_count(1)
        expect(item).not_to_contain_text("waiting")
        expect(item).to_have_attribute("data-waiting", "0")
        expect(page.locator("#inbox-thread-state")).to_have_text("Answered")
        expect(page.locator("#inbox-summary")).to_contain_text("1 waiting")
        room = ChatRoom.objects.get(owner=traveller, kind=ChatRoom.Kind.SUPPORT)
        assert room.awaiting_staff_since is None
        assert room.messages.filter(sender=staff_member).count() == 1

        page.wait_for_timeout(200)
        save_screenshot(page, "staff-inbox.png")
    finally:
        context.close()


def test_a_reply_shows_as_sending_until_its_ack_and_as_sent_once_after(
    browser: Browser, daphne_server: DaphneServer, staff_member: User
) -> None:
    """The room hears a reply once it is committed, its sender's `ack` comes once it is on disk:
    the reply shows in its place, still sending, until the ack."""
    earlier_conversations(staff_member)
    acks = AckHolder()
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    context.set_default_timeout(10_000)
    context.route_web_socket(re.compile(r"/ws/"), acks.route)
    try:
        page = context.new_page()
        sign_in(page, daphne_server, staff_member)
        page.goto(f"{daphne_server.url}{INBOX}")
        page.wait_for_selector('body[data-realtime="open"]')
        inbox_item(page, "Carlos Mendes").get_by_role("button").click()
        log = page.get_by_role("log")
        expect(log).to_contain_text("Can I bring my bike on the Douro tour?")

        # when staff reply, the ack held back
        page.get_by_label("Your reply").fill("Yes, bikes travel free.")
        page.get_by_role("button", name="Reply", exact=True).click()

        # then the room's event shows it once, in its place, still sending
        reply = log.locator(".inbox-msg", has_text="Yes, bikes travel free.")
        expect(reply).to_have_attribute("data-message-id", re.compile(r"^\d+$"))
        expect(reply).to_have_count(1)
        expect(reply).to_have_class(re.compile("is-pending"))
        expect(inbox_item(page, "Carlos Mendes")).not_to_contain_text("waiting")

        # and once the ack comes, sent, still once
        acks.wait_for(page, 1)
        acks.release()
        expect(reply).not_to_have_class(re.compile("is-pending"))
        expect(reply).to_have_count(1)
        expect(reply.locator("time")).to_have_count(1)
    finally:
        context.close()


def test_staff_inbox_works_at_phone_width(
    browser: Browser, daphne_server: DaphneServer, staff_member: User
) -> None:
    earlier_conversations(staff_member)
    context = browser.new_context(viewport={"width": 375, "height": 740})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        sign_in(page, daphne_server, staff_member)
        page.goto(f"{daphne_server.url}{INBOX}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375

        inbox_item(page, "Carlos Mendes").get_by_role("button").click()
        expect(page.get_by_role("log")).to_contain_text("bring my bike")
        expect(page.get_by_label("Your reply")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375

        page.get_by_role("button", name="← Conversations").click()
        expect(inbox_item(page, "Dana Kim")).to_be_visible()
    finally:
        context.close()
