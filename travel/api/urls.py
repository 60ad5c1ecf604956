from django.urls import path

from travel.api.views import BookingDetailApi, BookingListCreateApi, TourListApi

urlpatterns = [
    path("tours", TourListApi.as_view(), name="api-tours"),
    path("bookings", BookingListCreateApi.as_view(), name="api-bookings"),
    path("bookings/<int:booking_id>", BookingDetailApi.as_view(), name="api-booking"),
]
