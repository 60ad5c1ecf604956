import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tests.conftest import api_client_for
from tests.factories import BookingFactory, DepartureFactory, StaffFactory, UserFactory
from travel.models import Booking

pytestmark = pytest.mark.django_db


def test_tours_list_departures_with_seats_left(user: User, django_assert_num_queries) -> None:
    departure = DepartureFactory.create(capacity=10)
    DepartureFactory.create(tour=departure.tour)
    BookingFactory.create(departure=departure, travellers=3)
    BookingFactory.create(departure=departure, travellers=2, status=Booking.Status.CANCELLED)
    client = api_client_for(user)
    with django_assert_num_queries(2):
        response = client.get("/api/tours")
    assert response.status_code == 200
    (tour,) = response.json()["results"]
    assert set(tour) == {"id", "name", "destination", "description", "departures"}
    first = tour["departures"][0]
    assert set(first) == {"id", "startDate", "endDate", "seatsLeft"}
    assert first["id"] == departure.pk
    assert first["seatsLeft"] == 7


def test_booking_a_departure(user: User) -> None:
    departure = DepartureFactory.create()
    response = api_client_for(user).post(
        "/api/bookings", {"departureId": departure.pk, "travellers": 2}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["userId"] == user.pk
    assert body["travellers"] == 2
    assert body["tour"] == {"id": departure.tour.pk, "name": departure.tour.name}
    assert body["departure"] == {"id": departure.pk, "startDate": departure.start_date.isoformat()}
    assert body["createdAt"].endswith(("Z", "+00:00"))


def test_booking_more_seats_than_left_is_400(user: User) -> None:
    departure = DepartureFactory.create(capacity=2)
    response = api_client_for(user).post(
        "/api/bookings", {"departureId": departure.pk, "travellers": 3}, format="json"
    )
    assert response.status_code == 400
    assert not Booking.objects.exists()


@pytest.mark.parametrize(
    "body", [{}, {"departureId": "x"}, {"departureId": -1}, {"departureId": 1, "travellers": 0}]
)
def test_bad_booking_input_is_400(user: User, body: dict) -> None:
    DepartureFactory.create()
    assert api_client_for(user).post("/api/bookings", body, format="json").status_code == 400


def test_booking_an_unknown_departure_is_404(user: User) -> None:
    response = api_client_for(user).post("/api/bookings", {"departureId": 999999}, format="json")
    assert response.status_code == 404


def test_bookings_list_is_the_callers_own(user: User, django_assert_num_queries) -> None:
    mine = BookingFactory.create(user=user)
    BookingFactory.create()
    with django_assert_num_queries(1):
        response = api_client_for(user).get("/api/bookings")
    assert [b["id"] for b in response.json()["results"]] == [mine.pk]


def test_staff_see_every_booking(staff: User) -> None:
    BookingFactory.create()
    BookingFactory.create()
    assert len(api_client_for(staff).get("/api/bookings").json()["results"]) == 2


def test_staff_change_a_booking_status(staff: User) -> None:
    booking = BookingFactory.create()
    response = api_client_for(staff).patch(
        f"/api/bookings/{booking.pk}", {"status": "CONFIRMED"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "CONFIRMED"
    booking.refresh_from_db()
    assert booking.status == "CONFIRMED"


def test_owner_may_not_change_status_403_and_others_see_404(user: User) -> None:
    own = BookingFactory.create(user=user)
    others = BookingFactory.create(user=UserFactory.create())
    client = api_client_for(user)
    assert (
        client.patch(f"/api/bookings/{own.pk}", {"status": "PAID"}, format="json").status_code
        == 403
    )
    assert (
        client.patch(f"/api/bookings/{others.pk}", {"status": "PAID"}, format="json").status_code
        == 404
    )
    assert (
        client.patch("/api/bookings/999999", {"status": "PAID"}, format="json").status_code == 404
    )


def test_bad_status_is_400(staff: User) -> None:
    booking = BookingFactory.create()
    response = api_client_for(staff).patch(
        f"/api/bookings/{booking.pk}", {"status": "LOST"}, format="json"
    )
    assert response.status_code == 400


def test_unknown_booking_for_staff_is_404() -> None:
    response = api_client_for(StaffFactory.create()).patch(
        "/api/bookings/424242", {"status": "PAID"}, format="json"
    )
    assert response.status_code == 404


def test_anonymous_gets_401(api: APIClient) -> None:
    assert api.get("/api/tours").status_code == 401
