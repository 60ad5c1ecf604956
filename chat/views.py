"""Staff pages of chat: the support inbox, and the traveller bookings shown beside it."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from accounts.selectors import display_name
from chat import selectors
from chat.models import ChatRoom
from chat.shapes import room_shape
from travel.api.serializers import BookingOutput
from travel.selectors import booking_list

View = Callable[..., HttpResponse]

#: Bookings shown beside a conversation.
INBOX_BOOKINGS = 20


def staff_required(view: View) -> View:
    """Signed-in staff only: anonymous users go to the login page, others get a 404."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return login_required(wrapper)


def inbox_room_shape(room: ChatRoom) -> dict[str, Any]:
    """A Room plus what the inbox shows: the traveller's name, and the topic if the room has one."""
    owner = room.owner
    topic = getattr(room, "topic", None)
    return {
        **room_shape(room),
        "owner": (
            {"id": owner.pk, "name": display_name(owner), "username": owner.get_username()}
            if owner is not None
            else None
        ),
        "topic": topic if isinstance(topic, dict) else None,
    }


@staff_required
def staff_inbox(request: HttpRequest) -> HttpResponse:
    rooms = [inbox_room_shape(room) for room in selectors.support_rooms_inbox()[:200]]
    return render(request, "chat/staff_inbox.html", {"rooms": rooms})


@staff_required
def staff_user_bookings(request: HttpRequest, user_id: int) -> JsonResponse:
    """`{"results": [Booking]}`: a traveller's bookings, newest first (staff see everyone's)."""
    staff = request.user
    assert isinstance(staff, User)
    bookings = booking_list(user=staff).filter(user_id=user_id)[:INBOX_BOOKINGS]
    return JsonResponse({"results": BookingOutput(bookings, many=True).data})
