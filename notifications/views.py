"""Server-rendered notification pages: the per-type delivery preferences form."""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from notifications import selectors, services
from notifications.models import NotificationType

#: What each type is about, shown under its name on the preferences page.
TYPE_HELP: dict[str, str] = {
    NotificationType.BOOKING: "Changes to your bookings: confirmations, updates, cancellations.",
    NotificationType.TOUR: "News about tours you booked: itineraries, guides, meeting points.",
    NotificationType.PAYMENT: "Payments, receipts and refunds.",
    NotificationType.SYSTEM: "Account and service announcements.",
    NotificationType.PROMOTION: "Offers and new journeys we think you'll like.",
    NotificationType.MESSAGE: "New chat messages while you are away from a conversation.",
}
LOCKED_HELP = "Always on: we must tell you about money matters."


@dataclass(frozen=True)
class PreferenceRow:
    type: str
    label: str
    help: str
    in_app: bool
    email: bool
    locked: bool


def _signed_in(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _rows(user: User) -> list[PreferenceRow]:
    labels = dict(NotificationType.choices)
    return [
        PreferenceRow(
            type=pref["type"],
            label=labels[pref["type"]],
            help=TYPE_HELP.get(pref["type"], ""),
            in_app=pref["inApp"],
            email=pref["email"],
            locked=pref["locked"],
        )
        for pref in selectors.notification_preferences(user_id=user.pk)
    ]


@login_required
def notification_preferences_page(request: HttpRequest) -> HttpResponse:
    """GET shows every type with in-app and email switches; POST stores them all.

    Unchecked boxes are absent from a form post, so every type is written each time. A locked
    type's in-app box is disabled (never posted) and kept on whatever arrives.
    """
    user = _signed_in(request)
    if request.method == "POST":
        choices = [
            services.PreferenceInput(
                type=value,
                in_app=value in selectors.ALWAYS_IN_APP or f"in_app_{value}" in request.POST,
                email=f"email_{value}" in request.POST,
            )
            for value in NotificationType.values
        ]
        try:
            services.notification_preferences_set(user=user, preferences=choices)
        except services.NotificationError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, "Your notification preferences were saved.")
        return redirect("notification-preferences")
    return render(
        request,
        "notifications/preferences.html",
        {"rows": _rows(user), "locked_help": LOCKED_HELP},
    )
