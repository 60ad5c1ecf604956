import io

from django.contrib.auth.models import User
from django.core.management import call_command

from chat.models import ChatMessage, ChatRoom
from travel.models import Booking, Departure, Tour


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts() -> tuple[int, ...]:
    return (
        User.objects.count(),
        Tour.objects.count(),
        Departure.objects.count(),
        Booking.objects.count(),
        ChatRoom.objects.count(),
        ChatMessage.objects.count(),
    )


def test_seed_demo_creates_the_demo_logins_and_data(db: None) -> None:
    output = seed()

    staff = User.objects.get(username="staff")
    assert staff.is_staff and staff.is_superuser and staff.get_full_name() == "Sam Staff"
    assert User.objects.get(username="alice").check_password("alice-demo-pass")
    assert User.objects.get(username="bob").get_full_name() == "Bob Jones"
    assert 4 <= Tour.objects.count() <= 6
    lounge = ChatRoom.objects.get(kind="public", name="Travellers' Lounge")
    assert lounge.participants.count() == User.objects.count()
    assert ChatRoom.objects.get(kind="support", owner__username="alice").messages.exists()
    assert set(Booking.objects.values_list("status", flat=True)) >= {
        Booking.Status.PENDING,
        Booking.Status.CONFIRMED,
    }
    assert "alice-demo-pass" in output


def test_seed_demo_is_idempotent(db: None) -> None:
    seed()
    first = counts()

    seed()

    assert counts() == first
