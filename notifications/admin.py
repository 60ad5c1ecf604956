from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from notifications import services
from notifications.models import Notification, NotificationPreference, NotificationType


class SendNotificationForm(forms.Form):
    users = forms.ModelMultipleChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("username"),
        required=False,
        widget=FilteredSelectMultiple("users", is_stacked=False),
        help_text="The recipients; leave empty and tick “Everyone” to send to every user.",
    )
    everyone = forms.BooleanField(required=False, label="Everyone (every active user)")
    type = forms.ChoiceField(choices=NotificationType.choices, initial=NotificationType.SYSTEM)
    title = forms.CharField(max_length=200)
    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=10_000)
    link = forms.CharField(max_length=500, required=False, help_text="e.g. /bookings/")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if bool(cleaned.get("users")) == bool(cleaned.get("everyone")):
            raise forms.ValidationError("Choose some users or tick “Everyone” (not both).")
        return cleaned


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "type", "title", "is_read", "created_at"]
    list_filter = ["type", "is_read", "created_at"]
    search_fields = ["title", "message", "user__username", "user__first_name", "user__last_name"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        # New notifications go through the service (the send view) so recipients hear live.
        return False

    def get_urls(self) -> list[URLPattern]:
        send = path(
            "send/",
            self.admin_site.admin_view(self.send_view),
            name="notifications_notification_send",
        )
        return [send, *super().get_urls()]

    def send_view(self, request: HttpRequest) -> HttpResponse:
        form = SendNotificationForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            values = form.cleaned_data
            content: dict[str, Any] = {
                "type": values["type"],
                "title": values["title"],
                "message": values["message"],
                "link": values["link"],
            }
            if values["everyone"]:
                created = services.notification_broadcast_all(**content)
            else:
                created = services.notification_create(
                    user_ids=[user.pk for user in values["users"]], **content
                )
            self.message_user(request, f"Sent {created} notification(s).", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:notifications_notification_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Send notification",
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/notifications/notification/send.html", context)


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "type", "in_app", "email"]
    list_filter = ["type", "in_app", "email"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]
