from django.urls import path

from chat.api.presence_views import UserPresenceApi
from chat.api.views import MessageListCreateApi, RoomListCreateApi

urlpatterns = [
    path("chat/rooms", RoomListCreateApi.as_view(), name="api-chat-rooms"),
    path("chat/messages", MessageListCreateApi.as_view(), name="api-chat-messages"),
    path("users/presence/<int:user_id>", UserPresenceApi.as_view(), name="api-user-presence"),
]
