"""The notification bell in a real browser: live badge on every tab, toast, "Mark all read".

Events are created in this process and cross Redis to the daphne serving the pages. Writes run
in a helper thread: Playwright's sync API keeps an event loop in the test's thread, where
`async_to_sync` (the channel layer send) refuses to run.
"""

from typing import Any, TypeVar

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Locator, Page, expect

from notifications import services
from notifications.models import Notification, NotificationType
from tests.browser.conftest import off_loop, save_screenshot
from tests.browser.test_pages import PASSWORD, sign_in
from tests.conftest import DaphneServer, api_client_for

pytestmark = [pytest.mark.services, pytest.mark.browser]

T = TypeVar("T")


def create(user: User, **content: Any) -> None:
    """`notification_create` for one user, its events sent (see `in_thread`)."""
    off_loop(lambda: services.notification_create(user_ids=[user.pk], **content))


@pytest.fixture
def traveller(transactional_db: None) -> User:
    return User.objects.create_user(
        username="bianca", password=PASSWORD, first_name="Bianca", last_name="Rossi"
    )


@pytest.fixture
def staff_member(transactional_db: None) -> User:
    return User.objects.create_user(
        username="sam", password=PASSWORD, first_name="Sam", last_name="Ortiz", is_staff=True
    )


def badge(page: Page) -> Locator:
    return page.get_by_role("button", name="Notifications").locator(".badge")


def wait_until_live(page: Page) -> None:
    page.wait_for_selector('body[data-realtime="open"]')
    # The first page of notifications has loaded.
    page.wait_for_selector('#notifications-list[aria-busy="false"]', state="attached")


def test_a_staff_notification_rises_the_badge_on_every_tab_and_mark_all_read_clears_them(
    browser: Browser, daphne_server: DaphneServer, traveller: User, staff_member: User
) -> None:
    # given some history, and the traveller signed in with two tabs
    for type_, title, message, read in [
        (NotificationType.TOUR, "Meet your guide", "Marta will lead the Dolomites walk.", True),
        (NotificationType.PROMOTION, "Autumn in Kyoto", "Early-bird places are open.", True),
        (NotificationType.PAYMENT, "Deposit received", "We received your €300 deposit.", False),
    ]:
        create(traveller, type=type_, title=title, message=message, link="/bookings/")
        if read:
            Notification.objects.filter(user=traveller, title=title).update(is_read=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    try:
        first = context.new_page()
        sign_in(first, daphne_server, traveller)
        second = context.new_page()
        second.goto(f"{daphne_server.url}/tours/")
        for tab in (first, second):
            wait_until_live(tab)
            expect(badge(tab)).to_have_text("1")

        # when a staff member sends a notification
        def send() -> int:
            response = api_client_for(staff_member).post(
                "/api/notifications",
                {
                    "userIds": [traveller.pk],
                    "type": "BOOKING",
                    "title": "Booking confirmed",
                    "message": "Your place on Alpine Lakes Trek (12 Sep) is confirmed.",
                    "link": "/bookings/",
                },
                format="json",
            )
            return response.status_code

        assert off_loop(send) == 201

        # then both tabs count it, and each shows a toast
        for tab in (first, second):
            expect(badge(tab)).to_have_text("2")
            toast = tab.get_by_role("status").filter(has_text="Booking confirmed")
            expect(toast).to_be_visible()
        first.get_by_role("status").filter(has_text="Booking confirmed").get_by_role(
            "button", name="Dismiss"
        ).click()
        expect(first.get_by_role("status").filter(has_text="Booking confirmed")).to_have_count(0)

        # the panel lists it first, newest first, with its type
        first.get_by_role("button", name="Notifications").click()
        panel = first.get_by_role("dialog", name="Notifications")
        expect(panel).to_be_visible()
        items = panel.get_by_role("listitem")
        expect(items).to_have_count(4)
        expect(items.first).to_contain_text("Booking confirmed")
        expect(items.first).to_contain_text("Booking")
        expect(items.first.get_by_role("link", name="Booking confirmed")).to_have_attribute(
            "href", "/bookings/"
        )
        first.wait_for_timeout(300)  # the toast's exit
        save_screenshot(first, "bell-panel.png")

        # when one tab marks all read
        panel.get_by_role("button", name="Mark all read").click()

        # then the badge clears on both tabs
        for tab in (first, second):
            expect(badge(tab)).to_be_hidden()
            expect(badge(tab)).to_have_text("")
        assert not Notification.objects.filter(user=traveller, is_read=False).exists()
    finally:
        context.close()


def test_panel_filters_deletes_and_marks_one_read(
    browser: Browser, daphne_server: DaphneServer, traveller: User
) -> None:
    # given
    for type_, title in [
        (NotificationType.BOOKING, "Booking pending"),
        (NotificationType.SYSTEM, "Welcome to Wanderly"),
        (NotificationType.BOOKING, "Booking confirmed"),
    ]:
        create(traveller, type=type_, title=title, message="Details inside.")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        sign_in(page, daphne_server, traveller)
        wait_until_live(page)
        expect(badge(page)).to_have_text("3")
        page.get_by_role("button", name="Notifications").click()
        panel = page.get_by_role("dialog", name="Notifications")

        # when filtering by type
        panel.get_by_label("Show").select_option("BOOKING")

        # then only that type is listed
        expect(panel.get_by_role("listitem")).to_have_count(2)

        # when marking one read and deleting another
        confirmed = panel.get_by_role("listitem").filter(has_text="Booking confirmed")
        confirmed.get_by_role("button", name="Mark read").click()
        expect(badge(page)).to_have_text("2")
        pending = panel.get_by_role("listitem").filter(has_text="Booking pending")
        pending.get_by_role("button", name="Delete").click()

        # then
        expect(panel.get_by_role("listitem")).to_have_count(1)
        expect(badge(page)).to_have_text("1")
        assert list(
            Notification.objects.filter(user=traveller).values_list("title", "is_read")
        ) == [("Booking confirmed", True), ("Welcome to Wanderly", False)]

        # and Escape closes the panel, focus back on the bell
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(page.get_by_role("button", name="Notifications")).to_be_focused()
    finally:
        context.close()


def test_bell_panel_and_preferences_fit_a_phone(
    browser: Browser, daphne_server: DaphneServer, traveller: User
) -> None:
    create(
        traveller,
        type=NotificationType.TOUR,
        title="A very long title " * 6,
        message="Meeting point moved " * 20,
    )
    context = browser.new_context(viewport={"width": 375, "height": 740})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        sign_in(page, daphne_server, traveller)
        wait_until_live(page)
        page.get_by_role("button", name="Notifications").click()
        panel = page.get_by_role("dialog", name="Notifications")
        expect(panel.get_by_role("listitem")).to_have_count(1)
        box = panel.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 375
        assert page.evaluate("document.documentElement.scrollWidth") <= 375

        # the preferences page, linked from the panel
        panel.get_by_role("link", name="Notification preferences").click()
        page.wait_for_url(f"{daphne_server.url}/notifications/preferences/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        expect(page.get_by_label("Payment: in-app")).to_be_disabled()
        page.get_by_label("Promotion: in-app").uncheck()
        page.get_by_role("button", name="Save preferences").click()
        expect(page.get_by_role("status").filter(has_text="preferences were saved")).to_be_visible()
        expect(page.get_by_label("Promotion: in-app")).not_to_be_checked()
    finally:
        context.close()
