"""Server-rendered travel pages: home, tours, a tour's departures (and booking one), bookings."""

import datetime
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from travel import selectors, services
from travel.models import Departure, Tour

#: Departures shown on a tour card.
CARD_DEPARTURES = 3


@dataclass(frozen=True)
class DepartureRow:
    departure: Departure
    seats_left: int

    @property
    def sold_out(self) -> bool:
        return self.seats_left <= 0


@dataclass(frozen=True)
class TourCard:
    tour: Tour
    departures: list[DepartureRow]

    @property
    def hue(self) -> int:
        """A stable colour per tour for its cover (the site ships no photos)."""
        return (self.tour.pk * 47 + 170) % 360

    @property
    def next_departures(self) -> list[DepartureRow]:
        return self.departures[:CARD_DEPARTURES]


def _signed_in(request: HttpRequest) -> User:
    """The signed-in user (the views are all behind login_required)."""
    user = request.user
    assert isinstance(user, User)
    return user


def _card(tour: Tour, *, today: datetime.date) -> TourCard:
    # Departures were prefetched (with seats taken) by selectors.tour_list().
    rows = [
        DepartureRow(departure=d, seats_left=selectors.seats_left(d))
        for d in tour.departures.all()
        if d.start_date >= today
    ]
    return TourCard(tour=tour, departures=rows)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    cards = [_card(tour, today=today) for tour in selectors.tour_list()[:6]]
    return render(request, "travel/home.html", {"cards": cards})


@login_required
def tour_list(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    cards = [_card(tour, today=today) for tour in selectors.tour_list()]
    return render(request, "travel/tour_list.html", {"cards": cards})


def _tour_card(tour_id: int) -> TourCard:
    tour = selectors.tour_list().filter(pk=tour_id).first()
    if tour is None:
        raise Http404("No such tour.")
    return _card(tour, today=timezone.localdate())


@login_required
def tour_detail(request: HttpRequest, tour_id: int) -> HttpResponse:
    card = _tour_card(tour_id)
    bookable = [row for row in card.departures if not row.sold_out]
    return render(
        request,
        "travel/tour_detail.html",
        {
            "card": card,
            "tour": card.tour,
            "bookable": bookable,
            "max_travellers": services.MAX_TRAVELLERS_PER_BOOKING,
        },
    )


@login_required
@require_POST
def book_departure(request: HttpRequest, tour_id: int) -> HttpResponseRedirect:
    """The tour page's "Book" form: book a departure of this tour, then show the bookings."""
    card = _tour_card(tour_id)
    back = redirect("tour-detail", tour_id=tour_id)
    try:
        departure_id = int(request.POST.get("departure", ""))
        travellers = int(request.POST.get("travellers", "1") or "1")
    except ValueError:
        messages.error(request, "Choose a departure and a number of travellers.")
        return back
    if departure_id not in {row.departure.pk for row in card.departures}:
        messages.error(request, "That departure is not available any more.")
        return back
    try:
        booking = services.booking_create(
            user=_signed_in(request), departure_id=departure_id, travellers=travellers
        )
    except services.NotFound:
        messages.error(request, "That departure is not available any more.")
        return back
    except services.BookingError as error:
        messages.error(request, str(error))
        return back
    messages.success(
        request,
        f"Booked {card.tour.name} on {booking.departure.start_date:%d %b %Y} — "
        "your booking is pending confirmation.",
    )
    return redirect("my-bookings")


@login_required
def my_bookings(request: HttpRequest) -> HttpResponse:
    user = _signed_in(request)
    bookings = selectors.booking_list(user=user).filter(user_id=user.pk)
    return render(request, "travel/my_bookings.html", {"bookings": bookings})
