"""`python manage.py seed_demo`: demo users, tours, departures and bookings (safe to re-run)."""

import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from travel import services
from travel.models import Booking, Departure, Tour

#: username, password, first name, last name, staff?
USERS: list[tuple[str, str, str, str, bool]] = [
    ("staff", "staff-demo-pass", "Sam", "Staff", True),
    ("alice", "alice-demo-pass", "Alice", "Smith", False),
    ("bob", "bob-demo-pass", "Bob", "Jones", False),
    ("carol", "carol-demo-pass", "Carol", "Diaz", False),
    ("guide", "guide-demo-pass", "Greta", "Guide", False),
]

#: name, destination, price, days, description, departures as days from today
TOURS: list[tuple[str, str, str, int, str, list[int]]] = [
    (
        "Alpine Lakes Trek",
        "Swiss Alps",
        "1890",
        8,
        "Hut-to-hut hiking past glacier lakes and high meadows, with a mountain guide.\n\n"
        "Moderate fitness; luggage is carried between huts.",
        [21, 56, 98],
    ),
    (
        "Lisbon & the Atlantic Coast",
        "Portugal",
        "1240",
        6,
        "Tiled alleys, fado nights and surf beaches: old Lisbon, Sintra's palaces and the "
        "wild coast of Cascais.",
        [14, 42],
    ),
    (
        "Kyoto Temples & Tea",
        "Japan",
        "3150",
        10,
        "Zen gardens, a tea ceremony with a master, a night in a ryokan and the bamboo "
        "groves of Arashiyama.",
        [35, 77, 140],
    ),
    (
        "Iceland Ring Road",
        "Iceland",
        "2780",
        9,
        "Waterfalls, black-sand beaches, glacier lagoons and — with luck — the northern lights.",
        [28, 63],
    ),
    (
        "Patagonia Wild Trails",
        "Chile & Argentina",
        "3490",
        12,
        "Torres del Paine's granite towers and the Fitz Roy massif on foot, camping and "
        "staying in estancias.",
        [49, 105, 161],
    ),
    (
        "Amalfi Coast Sail & Stroll",
        "Italy",
        "1650",
        7,
        "Lemon groves, cliff-top villages and a day under sail to Capri.",
        [18, 70],
    ),
]

#: username, tour name, departure index, travellers, status
BOOKINGS: list[tuple[str, str, int, int, str]] = [
    ("alice", "Alpine Lakes Trek", 0, 2, Booking.Status.CONFIRMED),
    ("alice", "Kyoto Temples & Tea", 0, 1, Booking.Status.PENDING),
    ("alice", "Iceland Ring Road", 1, 2, Booking.Status.PAID),
    ("bob", "Alpine Lakes Trek", 0, 1, Booking.Status.PENDING),
    ("bob", "Lisbon & the Atlantic Coast", 0, 3, Booking.Status.CANCELLED),
    ("carol", "Patagonia Wild Trails", 0, 1, Booking.Status.CONFIRMED),
]


class Command(BaseCommand):
    help = "Create demo users, tours, departures and bookings. Re-running changes nothing."

    def _chat(self, users: dict[str, User]) -> None:
        """A public lounge everyone is in, with a welcome, and a support question from Alice."""
        from chat import services as chat_services
        from chat.models import ChatMessage

        lounge, _ = chat_services.public_room_create_or_join(
            user=users["staff"],
            name="Travellers' Lounge",
            description="Say hello, swap tips and ask the team anything.",
        )
        for user in users.values():
            chat_services.public_room_create_or_join(user=user, name=lounge.name)
        if not ChatMessage.objects.filter(room=lounge).exists():
            chat_services.message_send(
                user=users["staff"],
                room_id=lounge.pk,
                text="Welcome aboard! This is the lounge: ask us anything about your trips.",
                client_id="seed-welcome",
            )
        support, _ = chat_services.support_room_get_or_create(user=users["alice"])
        chat_services.message_send(
            user=users["alice"],
            room_id=support.pk,
            text="Hi! Is travel insurance included in my booking?",
            client_id="seed-alice-question",  # idempotent: stored once however often we seed
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            users = {spec[0]: self._user(*spec) for spec in USERS}
            tours = {spec[0]: self._tour(*spec, guide=users["guide"]) for spec in TOURS}
        for username, tour_name, index, travellers, status in BOOKINGS:
            self._booking(
                user=users[username],
                staff=users["staff"],
                departure=tours[tour_name][index],
                travellers=travellers,
                status=status,
            )

        self._chat(users)

        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in at /accounts/login/ as:"))
        for username, password, first, last, is_staff in USERS:
            role = "staff, admin" if is_staff else "traveller"
            if username == "guide":
                role = "tour guide"
            self.stdout.write(f"  {username:<7} / {password:<17} {first} {last} ({role})")

    def _user(self, username: str, password: str, first: str, last: str, staff: bool) -> User:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@example.com",
                "is_staff": staff,
                "is_superuser": staff,
            },
        )
        if created or not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        return user

    def _tour(
        self,
        name: str,
        destination: str,
        price: str,
        days: int,
        description: str,
        offsets: list[int],
        *,
        guide: User,
    ) -> list[Departure]:
        tour, _ = Tour.objects.update_or_create(
            name=name,
            defaults={
                "destination": destination,
                "price": Decimal(price),
                "duration_days": days,
                "description": description,
                "is_active": True,
            },
        )
        # Departures are matched by position, so a re-run on a later day moves the same rows
        # forward (keeping their bookings) instead of adding new ones.
        today = timezone.localdate()
        existing = list(tour.departures.order_by("id"))
        departures = []
        for index, offset in enumerate(offsets):
            start = today + datetime.timedelta(days=offset)
            fields = {
                "start_date": start,
                "end_date": start + datetime.timedelta(days=days - 1),
                "capacity": 12,
                "guide": guide if index == 0 else None,
            }
            if index < len(existing):
                departure = existing[index]
                for key, value in fields.items():
                    setattr(departure, key, value)
                departure.save()
            else:
                departure = Departure.objects.create(tour=tour, **fields)
            departures.append(departure)
        return departures

    def _booking(
        self, *, user: User, staff: User, departure: Departure, travellers: int, status: str
    ) -> None:
        if Booking.objects.filter(user=user, departure=departure).exists():
            return
        booking = services.booking_create(
            user=user, departure_id=departure.pk, travellers=travellers
        )
        if status != Booking.Status.PENDING:
            services.booking_set_status(actor=staff, booking_id=booking.pk, status=status)
