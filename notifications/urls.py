from django.urls import path

from notifications import views

urlpatterns = [
    path(
        "notifications/preferences/",
        views.notification_preferences_page,
        name="notification-preferences",
    ),
]
