from typing import Any

from rest_framework import serializers

from travel.models import Booking, Departure, Tour
from travel.selectors import seats_left


class DepartureOutput(serializers.ModelSerializer[Departure]):
    startDate = serializers.DateField(source="start_date")
    endDate = serializers.DateField(source="end_date")
    seatsLeft = serializers.SerializerMethodField()

    class Meta:
        model = Departure
        fields = ["id", "startDate", "endDate", "seatsLeft"]

    def get_seatsLeft(self, departure: Departure) -> int:
        return seats_left(departure)


class TourOutput(serializers.ModelSerializer[Tour]):
    departures = DepartureOutput(many=True, read_only=True)

    class Meta:
        model = Tour
        fields = ["id", "name", "destination", "description", "departures"]


class BookingOutput(serializers.ModelSerializer[Booking]):
    userId = serializers.IntegerField(source="user_id")
    tour = serializers.SerializerMethodField()
    departure = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = Booking
        fields = [
            "id",
            "userId",
            "tour",
            "departure",
            "status",
            "travellers",
            "createdAt",
            "updatedAt",
        ]

    def get_tour(self, booking: Booking) -> dict[str, Any]:
        tour = booking.departure.tour
        return {"id": tour.pk, "name": tour.name}

    def get_departure(self, booking: Booking) -> dict[str, Any]:
        return {"id": booking.departure_id, "startDate": booking.departure.start_date.isoformat()}
