"""Writes of the travel domain: booking a departure and moving a booking through its states."""

from django.contrib.auth.models import User
from django.db import transaction

from chat import services as chat_services
from notifications.models import NotificationType
from notifications.services import notification_create
from travel.models import Booking, Departure
from travel.selectors import seats_left


class BookingError(Exception):
    """A booking request that cannot be honoured (the message says why)."""


class NotFound(Exception):
    """The object does not exist or the caller may not see it."""


class Forbidden(Exception):
    """The caller sees the object but may not do this to it."""


MAX_TRAVELLERS_PER_BOOKING = 20


def booking_create(*, user: User, departure_id: int, travellers: int = 1) -> Booking:
    """Book `travellers` seats on a departure for `user` (status PENDING)."""
    if not 1 <= travellers <= MAX_TRAVELLERS_PER_BOOKING:
        raise BookingError(f"travellers must be between 1 and {MAX_TRAVELLERS_PER_BOOKING}.")
    with transaction.atomic():
        # Lock the departure so two bookings cannot both take the last seats.
        departure = (
            Departure.objects.select_for_update()
            .select_related("tour")
            .filter(pk=departure_id, tour__is_active=True)
            .first()
        )
        if departure is None:
            raise NotFound("No such departure.")
        if seats_left(departure) < travellers:
            raise BookingError("Not enough seats left on this departure.")
        booking = Booking.objects.create(user=user, departure=departure, travellers=travellers)
        chat_services.departure_room_sync(departure_id=departure.pk)
    return booking


def booking_set_status(*, actor: User, booking_id: int, status: str) -> Booking:
    """Staff move a booking to `status`; the owner hears of it (see notifications)."""
    if status not in Booking.Status.values:
        raise BookingError(f"status must be one of {', '.join(Booking.Status.values)}.")
    if not actor.is_staff:
        if Booking.objects.filter(pk=booking_id, user_id=actor.pk).exists():
            raise Forbidden("Only staff change a booking's status.")
        raise NotFound("No such booking.")
    with transaction.atomic():
        booking = (
            Booking.objects.select_for_update()
            .select_related("departure__tour", "user")
            .filter(pk=booking_id)
            .first()
        )
        if booking is None:
            raise NotFound("No such booking.")
        if booking.status != status:
            booking.status = status
            booking.save(update_fields=["status", "updated_at"])
            chat_services.departure_room_sync(departure_id=booking.departure_id)
            _notify_owner_of_status(booking)
    return booking


def _notify_owner_of_status(booking: Booking) -> None:
    """The owner's BOOKING notification, sent when the surrounding transaction commits."""
    label = Booking.Status(booking.status).label.lower()
    departure = booking.departure
    notification_create(
        user_ids=[booking.user_id],
        type=NotificationType.BOOKING,
        title=f"Booking {label}",
        message=(
            f"Your booking #{booking.pk} for {departure.tour.name} "
            f"on {departure.start_date:%d %b %Y} is now {label}."
        ),
        link="/bookings/",
        data={"bookingId": booking.pk, "status": booking.status},
        # A cancellation reaches the owner even if they turned booking notices off.
        critical=booking.status == Booking.Status.CANCELLED,
    )
