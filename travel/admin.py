from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from travel import services
from travel.models import Booking, Departure, Tour
from travelsite.api import request_user


class DepartureInline(admin.TabularInline):
    model = Departure
    extra = 0
    raw_id_fields = ["guide"]


@admin.register(Tour)
class TourAdmin(admin.ModelAdmin):
    list_display = ["name", "destination", "price", "duration_days", "is_active"]
    list_filter = ["is_active", "destination"]
    search_fields = ["name", "destination"]
    inlines = [DepartureInline]


@admin.register(Departure)
class DepartureAdmin(admin.ModelAdmin):
    list_display = ["tour", "start_date", "end_date", "capacity", "guide"]
    list_filter = ["tour"]
    date_hierarchy = "start_date"
    raw_id_fields = ["guide"]


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "departure", "status", "travellers", "created_at"]
    list_filter = ["status", "departure__tour"]
    search_fields = [
        "user__username",
        "user__first_name",
        "user__last_name",
        "departure__tour__name",
    ]
    raw_id_fields = ["user", "departure"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["mark_confirmed", "mark_paid", "mark_cancelled", "mark_completed"]

    def save_model(self, request: HttpRequest, obj: Booking, form: object, change: bool) -> None:
        # A status change goes through the service so its owner is told about it.
        if change and "status" in getattr(form, "changed_data", []):
            new_status = obj.status
            obj.status = Booking.objects.values_list("status", flat=True).get(pk=obj.pk)
            super().save_model(request, obj, form, change)
            services.booking_set_status(
                actor=request_user(request), booking_id=obj.pk, status=new_status
            )
            obj.refresh_from_db()
        else:
            super().save_model(request, obj, form, change)

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Booking], status: str) -> None:
        for booking_id in queryset.values_list("pk", flat=True):
            services.booking_set_status(
                actor=request_user(request), booking_id=booking_id, status=status
            )
        self.message_user(
            request, f"{queryset.count()} booking(s) set to {status}.", messages.SUCCESS
        )

    @admin.action(description="Mark selected bookings confirmed")
    def mark_confirmed(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        self._set_status(request, queryset, Booking.Status.CONFIRMED)

    @admin.action(description="Mark selected bookings paid")
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        self._set_status(request, queryset, Booking.Status.PAID)

    @admin.action(description="Mark selected bookings cancelled")
    def mark_cancelled(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        self._set_status(request, queryset, Booking.Status.CANCELLED)

    @admin.action(description="Mark selected bookings completed")
    def mark_completed(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        self._set_status(request, queryset, Booking.Status.COMPLETED)
