"""The server-rendered pages in a real browser (headless Chromium) against a live daphne.

They run on the test database through `daphne_server`, so every test requests `transactional_db`
to commit what it creates where the server can see it.
"""

import datetime
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.conftest import DaphneServer
from travel.models import Booking, Departure, Tour

pytestmark = [pytest.mark.services, pytest.mark.browser]

PASSWORD = "browser-pass-123"
XSS_NAME = "<script>alert(1)</script> Alps"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def traveller(transactional_db: None) -> User:
    return User.objects.create_user(
        username="alice", password=PASSWORD, first_name="Alice", last_name="Smith"
    )


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


def sign_in(page: Page, server: DaphneServer, user: User) -> None:
    page.goto(f"{server.url}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/")


def test_sign_in_lands_on_home_with_widgets_and_an_open_socket(
    page: Page, daphne_server: DaphneServer, traveller: User
) -> None:
    # when
    sign_in(page, daphne_server, traveller)

    # then
    expect(page.get_by_role("button", name="Notifications")).to_be_visible()
    expect(page.get_by_role("button", name="Chat")).to_be_visible()
    page.wait_for_selector('body[data-realtime="open"]')
    pong = page.evaluate(
        """() => new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error("no pong")), 5000);
            const off = window.realtime.on("pong", (frame) => {
                clearTimeout(timer); off(); resolve(frame);
            });
            window.realtime.send({type: "ping"});
        })"""
    )
    assert pong == {"type": "pong"}
    assert page.evaluate("window.realtime.status") == "open"


def test_anonymous_home_redirects_to_sign_in(
    page: Page, daphne_server: DaphneServer, transactional_db: None
) -> None:
    page.goto(f"{daphne_server.url}/")

    assert page.url == f"{daphne_server.url}/accounts/login/?next=/"
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()
    expect(page.get_by_role("button", name="Chat")).to_have_count(0)
    assert page.evaluate("document.body.dataset.realtime") is None


def test_home_has_no_horizontal_overflow_at_phone_width(
    browser: Browser, daphne_server: DaphneServer, traveller: User, tour: Tour
) -> None:
    # given a long tour name, which must wrap rather than widen the page
    Tour.objects.create(name="Grand " * 12 + "Tour", destination="Everywhere")
    context = browser.new_context(viewport={"width": 375, "height": 740})
    try:
        page = context.new_page()
        sign_in(page, daphne_server, traveller)

        for path in ["/", "/tours/", f"/tours/{tour.pk}/", "/bookings/"]:
            page.goto(f"{daphne_server.url}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{path} is {width}px wide"
        expect(page.get_by_role("button", name="Notifications")).to_be_visible()
        expect(page.get_by_role("button", name="Chat")).to_be_visible()
    finally:
        context.close()


def test_tour_names_are_escaped_on_list_and_detail(
    page: Page, daphne_server: DaphneServer, traveller: User
) -> None:
    # given
    tour = Tour.objects.create(name=XSS_NAME, destination="<b>Alps</b>", duration_days=3)
    start = timezone.localdate() + datetime.timedelta(days=10)
    Departure.objects.create(tour=tour, start_date=start, end_date=start)
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    sign_in(page, daphne_server, traveller)

    for path in ["/", "/tours/", f"/tours/{tour.pk}/"]:
        # when
        page.goto(f"{daphne_server.url}{path}")

        # then the name shows as typed, and no script ran
        expect(page.get_by_text(XSS_NAME).first).to_be_visible()
        assert "<script>alert(1)</script>" not in page.content()
    expect(page.get_by_role("heading", name=XSS_NAME, level=1)).to_be_visible()
    assert dialogs == []


def test_booking_from_tour_detail_creates_a_pending_booking(
    page: Page, daphne_server: DaphneServer, traveller: User, tour: Tour
) -> None:
    # given
    departure = tour.departures.get()
    sign_in(page, daphne_server, traveller)
    page.goto(f"{daphne_server.url}/tours/{tour.pk}/")

    # when
    page.get_by_label("Departure", exact=True).select_option(str(departure.pk))
    page.get_by_label("Travellers").fill("2")
    page.get_by_role("button", name="Book", exact=True).click()

    # then
    page.wait_for_url(f"{daphne_server.url}/bookings/")
    row = page.get_by_role("row").filter(has_text=tour.name)
    expect(row).to_have_count(1)
    expect(row.get_by_text("Pending")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="pending confirmation")).to_be_visible()
    booking = Booking.objects.get(user=traveller)
    assert (booking.departure_id, booking.travellers, booking.status) == (
        departure.pk,
        2,
        Booking.Status.PENDING,
    )
