"""Reads of tours, departures and bookings for pages and the API."""

from django.contrib.auth.models import User
from django.db.models import Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from travel.models import Booking, Departure, Tour

#: Bookings that hold seats.
SEAT_HOLDING = ~Q(status=Booking.Status.CANCELLED)


def departures_with_seats() -> QuerySet[Departure]:
    """Departures annotated with `seats_taken` by bookings that hold seats."""
    return Departure.objects.annotate(
        seats_taken=Coalesce(
            Sum("bookings__travellers", filter=~Q(bookings__status=Booking.Status.CANCELLED)), 0
        )
    )


def seats_left(departure: Departure) -> int:
    taken = getattr(departure, "seats_taken", None)
    if taken is None:
        taken = departure.bookings.filter(SEAT_HOLDING).aggregate(n=Sum("travellers"))["n"] or 0
    return max(departure.capacity - taken, 0)


def tour_list() -> QuerySet[Tour]:
    """Active tours with their departures (and seats left) prefetched."""
    return Tour.objects.filter(is_active=True).prefetch_related(
        Prefetch("departures", queryset=departures_with_seats().order_by("start_date", "id"))
    )


def booking_list(*, user: User) -> QuerySet[Booking]:
    """The caller's bookings, newest first; staff see everyone's."""
    bookings = Booking.objects.select_related("departure__tour", "user")
    if not user.is_staff:
        bookings = bookings.filter(user_id=user.pk)
    return bookings.order_by("-created_at", "-id")
