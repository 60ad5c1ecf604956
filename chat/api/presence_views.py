"""`GET /api/users/presence/{userId}`: a user's Presence, for those who may see it.

Here rather than in the presence app because who may see whom (sharing a room) is chat's rule.
"""

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chat.presence_ws import presence_visible_to
from presence.selectors import presence_of
from travelsite.api import request_user
from travelsite.openapi import ApiSchema, errors

MAX_ID = 2**63 - 1


class PresenceUserDoc(serializers.Serializer):
    firstName = serializers.CharField()
    lastName = serializers.CharField()

    class Meta:
        ref_name = "PresenceUser"


class PresenceDoc(serializers.Serializer):
    userId = serializers.IntegerField()
    isOnline = serializers.BooleanField()
    lastSeenAt = serializers.DateTimeField(
        allow_null=True, help_text="When the user last went offline (null: never)."
    )
    user = PresenceUserDoc()

    class Meta:
        ref_name = "Presence"


class UserPresenceApi(APIView):
    schema = ApiSchema()

    @extend_schema(
        operation_id="user_presence",
        summary="A user's presence",
        description=(
            "Online while at least one of the user's sockets is open. Callers see users they "
            "share a room with (and themselves); staff see everyone; anyone else is 404, "
            "exactly as for an id that does not exist."
        ),
        responses={200: PresenceDoc, **errors(401, 404)},
    )
    def get(self, request: Request, user_id: int) -> Response:
        viewer = request_user(request)
        target = User.objects.filter(pk=user_id).first() if 0 < user_id <= MAX_ID else None
        if target is None or not presence_visible_to(viewer=viewer, user_id=target.pk):
            raise NotFound("No such user.")
        return Response(presence_of(user=target))
