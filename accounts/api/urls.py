from django.urls import path

from accounts.api.views import TokenCreateApi

urlpatterns = [
    path("auth/token", TokenCreateApi.as_view(), name="api-token"),
]
