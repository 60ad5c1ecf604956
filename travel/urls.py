from django.urls import path

from travel import views

urlpatterns = [
    path("", views.home, name="home"),
    path("tours/", views.tour_list, name="tour-list"),
    path("tours/<int:tour_id>/", views.tour_detail, name="tour-detail"),
    path("tours/<int:tour_id>/book/", views.book_departure, name="tour-book"),
    path("bookings/", views.my_bookings, name="my-bookings"),
]
