from django.urls import path

from chat import views

urlpatterns = [
    path("staff/inbox/", views.staff_inbox, name="staff-inbox"),
    path(
        "staff/inbox/users/<int:user_id>/bookings",
        views.staff_user_bookings,
        name="staff-inbox-bookings",
    ),
]
