from django.urls import path

from notifications.api.views import NotificationPreferencesApi, NotificationsApi

urlpatterns = [
    path("notifications", NotificationsApi.as_view(), name="api-notifications"),
    path(
        "notifications/preferences",
        NotificationPreferencesApi.as_view(),
        name="api-notification-preferences",
    ),
]
