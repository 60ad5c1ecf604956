"""The staff's presence list: who is online, when others were last seen."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from presence.models import UserPresence


@admin.register(UserPresence)
class UserPresenceAdmin(admin.ModelAdmin):
    """Read-only for every staff member: presence is written by sockets, never by hand."""

    list_display = ["user", "full_name", "is_online", "last_seen_at", "updated_at"]
    list_filter = ["is_online", "last_seen_at", "user__is_staff"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email"]
    ordering = ["-is_online", "-last_seen_at"]
    list_select_related = ["user"]
    readonly_fields = ["user", "is_online", "last_seen_at", "version", "updated_at"]
    date_hierarchy = "last_seen_at"

    @admin.display(description="Name")
    def full_name(self, row: UserPresence) -> str:
        return f"{row.user.first_name} {row.user.last_name}".strip()

    def get_queryset(self, request: HttpRequest) -> QuerySet[UserPresence]:
        return super().get_queryset(request).select_related("user")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
