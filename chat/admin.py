from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from chat import services
from chat.models import ChatMessage, ChatRoom, ChatRoomParticipant
from travelsite.api import request_user


class ParticipantInline(admin.TabularInline):
    model = ChatRoomParticipant
    extra = 0
    raw_id_fields = ["user"]
    readonly_fields = ["joined_at", "last_read_message_id"]


@admin.register(ChatRoom)
class ChatRoomAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "kind",
        "owner",
        "is_active",
        "awaiting_staff_since",
        "last_activity_at",
    ]
    list_filter = ["kind", "is_active"]
    search_fields = [
        "name",
        "description",
        "owner__username",
        "owner__first_name",
        "owner__last_name",
    ]
    raw_id_fields = ["created_by", "owner", "departure", "last_message"]
    readonly_fields = ["direct_key", "created_at", "updated_at", "last_activity_at"]
    inlines = [ParticipantInline]


@admin.register(ChatMessage)
class ChatMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "room", "sender", "short_text", "created_at", "is_hidden"]
    list_filter = ["is_hidden", "room__kind", "created_at", "room"]
    search_fields = [
        "message",
        "sender__username",
        "sender__first_name",
        "sender__last_name",
        "room__name",
    ]
    date_hierarchy = "created_at"
    raw_id_fields = ["room", "sender"]
    readonly_fields = [
        "room",
        "sender",
        "message",
        "client_id",
        "created_at",
        "hidden_at",
        "is_hidden",
    ]
    list_select_related = ["room", "sender"]
    actions = ["hide_messages"]

    @admin.display(description="Message")
    def short_text(self, message: ChatMessage) -> str:
        return message.message if len(message.message) <= 80 else message.message[:79] + "…"

    @admin.action(description="Hide selected messages (moderation)")
    def hide_messages(self, request: HttpRequest, queryset: QuerySet[ChatMessage]) -> None:
        actor = request_user(request)
        ids = list(queryset.filter(is_hidden=False).values_list("pk", flat=True))
        for message_id in ids:
            services.message_hide(actor=actor, message_id=message_id)
        self.message_user(request, f"{len(ids)} message(s) hidden.", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # messages are written through the chat, never forged in the admin
