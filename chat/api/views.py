"""Chat REST API: thin views over chat.services (writes) and chat.selectors (reads)."""

from typing import Any, NoReturn

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chat import selectors, services
from chat.models import ChatRoom
from chat.shapes import message_row_shape, message_shape, room_shape
from travelsite.api import StrictCharField, request_user
from travelsite.openapi import RETRY_AFTER, WRITE_ERRORS, ApiSchema, errors

MAX_ID = 2**63 - 1


def raise_api_error(error: services.ChatError) -> NoReturn:
    """Map a refused chat action to its HTTP answer."""
    if isinstance(error, services.NotFound):
        raise NotFound(str(error))
    if isinstance(error, services.Forbidden):
        raise PermissionDenied(str(error))
    raise ValidationError({"detail": str(error)})


# --- Shapes, for the OpenAPI schema only (the data comes from chat.shapes) ---------------------


class MessageUserDoc(serializers.Serializer):
    id = serializers.IntegerField()
    firstName = serializers.CharField()
    lastName = serializers.CharField()
    profileImage = serializers.URLField(allow_null=True)

    class Meta:
        ref_name = "MessageUser"


class MessageDoc(serializers.Serializer):
    id = serializers.IntegerField()
    message = serializers.CharField()
    roomId = serializers.IntegerField()
    userId = serializers.IntegerField()
    clientId = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    user = MessageUserDoc()

    class Meta:
        ref_name = "Message"


class RoomDoc(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.ChoiceField(choices=ChatRoom.Kind.choices)
    isActive = serializers.BooleanField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    unreadCount = serializers.IntegerField()
    lastMessage = MessageDoc(allow_null=True)
    ownerId = serializers.IntegerField(allow_null=True, help_text="Support rooms: the traveller.")
    departureId = serializers.IntegerField(allow_null=True, help_text="A departure's group room.")
    awaitingStaffSince = serializers.DateTimeField(
        allow_null=True, help_text="Support rooms: since when a traveller awaits an answer."
    )
    topic = serializers.JSONField(
        allow_null=True,
        help_text="Support rooms: what the traveller asks about, `{type, id, name}`.",
    )
    members = serializers.ListField(
        child=serializers.DictField(),
        allow_null=True,
        help_text="Direct rooms: both members; support rooms: the traveller.",
    )

    class Meta:
        ref_name = "Room"


class RoomListCreateApi(APIView):
    schema = ApiSchema()

    class RoomListQuery(serializers.Serializer):
        waiting = serializers.BooleanField(required=False, default=False)

    class RoomCreateInput(serializers.Serializer):
        kind = serializers.ChoiceField(choices=ChatRoom.Kind.choices, required=False)
        name = StrictCharField(required=False, max_length=100, trim_whitespace=True)
        description = StrictCharField(required=False, allow_blank=True, max_length=500, default="")
        userId = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        memberIds = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
            required=False,
            max_length=1000,
        )

    class RoomCreateDoc(RoomCreateInput):
        # The body as documented. The view reads `topic` itself, only for `kind: "support"`
        # (400 when malformed there), so any JSON is accepted.
        topic = serializers.JSONField(
            required=False,
            allow_null=True,
            help_text=(
                'Support rooms: what the traveller asks about, `{"type": "tour" or "booking", '
                '"id": ...}`; ignored for other kinds.'
            ),
        )

        class Meta:
            ref_name = "RoomCreateInput"

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "waiting",
                bool,
                description="Staff: support rooms waiting for a staff answer, oldest first.",
            )
        ],
        responses={
            200: inline_serializer("RoomList", {"results": RoomDoc(many=True)}),
            **errors(400, 401, 403),
        },
    )
    def get(self, request: Request) -> Response:
        user = request_user(request)
        query = self.RoomListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        if query.validated_data["waiting"]:
            if not user.is_staff:
                raise PermissionDenied("Only staff see the support queue.")
            rooms = list(selectors.support_rooms_waiting())
        else:
            rooms = selectors.with_unread_counts(list(selectors.room_list(user=user)), user=user)
        return Response({"results": [room_shape(room) for room in rooms]})

    @extend_schema(
        request=RoomCreateDoc,
        responses={201: RoomDoc, 200: RoomDoc, **errors(*WRITE_ERRORS, 403, 404)},
        parameters=[RETRY_AFTER],
        description=(
            "`{name}` joins (staff: creates) a public room; `{kind: 'support'}` gives the caller "
            "their support room; `{kind: 'direct', userId}` the direct room with that user; "
            "staff create group rooms with `{name, kind: 'group', memberIds}`; "
            "`{kind: 'support', topic: {type, id}}` also records a tour or one of the "
            "caller's bookings as what the support room is about."
        ),
    )
    def post(self, request: Request) -> Response:
        user = request_user(request)
        data = self.RoomCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values: dict[str, Any] = data.validated_data
        kind = values.get("kind") or ChatRoom.Kind.PUBLIC
        created = False
        try:
            if kind == ChatRoom.Kind.SUPPORT:
                topic = request.data.get("topic") if isinstance(request.data, dict) else None
                if topic is not None:
                    # "Ask us about this tour/booking": the room keeps what it is about.
                    room, created = services.support_room_open_about(user=user, topic=topic)
                else:
                    room, created = services.support_room_get_or_create(user=user)
            elif kind == ChatRoom.Kind.DIRECT:
                if "userId" not in values:
                    raise ValidationError({"userId": ["This field is required."]})
                room, created = services.direct_room_get_or_create(
                    user=user, other_user_id=values["userId"]
                )
            elif kind == ChatRoom.Kind.GROUP:
                if "name" not in values:
                    raise ValidationError({"name": ["This field is required."]})
                room = services.group_room_create(
                    actor=user,
                    name=values["name"],
                    description=values["description"],
                    member_ids=values.get("memberIds", []),
                )
                created = True
            else:
                if "name" not in values:
                    raise ValidationError({"name": ["This field is required."]})
                room, created = services.public_room_create_or_join(
                    user=user, name=values["name"], description=values["description"]
                )
        except services.ChatError as error:
            raise_api_error(error)
        room = selectors.room_of(user=user, room_id=room.pk)
        return Response(
            room_shape(room), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class MessageListCreateApi(APIView):
    schema = ApiSchema()

    class MessageListQuery(serializers.Serializer):
        roomId = serializers.IntegerField(min_value=1, max_value=MAX_ID)
        before = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        after = serializers.IntegerField(required=False, min_value=0, max_value=MAX_ID)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=50)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if "before" in attrs and "after" in attrs:
                raise serializers.ValidationError("Give `before` or `after`, not both.")
            return attrs

    class MessageCreateInput(serializers.Serializer):
        roomId = serializers.IntegerField(min_value=1, max_value=MAX_ID)
        # Checked by the service (trimmed length, NUL, lone surrogates); kept exactly as typed.
        message = serializers.JSONField()
        clientId = serializers.JSONField(required=False)

    @extend_schema(
        parameters=[MessageListQuery],
        responses={
            200: inline_serializer(
                "MessagePage",
                {"results": MessageDoc(many=True), "hasMore": serializers.BooleanField()},
            ),
            **errors(400, 401, 404),
        },
    )
    def get(self, request: Request) -> Response:
        user = request_user(request)
        query = self.MessageListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        values = query.validated_data
        room = selectors.visible_room(user=user, room_id=values["roomId"])
        if room is None:
            raise NotFound("No such room.")
        messages, has_more = selectors.message_page(
            room=room,
            before=values.get("before"),
            after=values.get("after"),
            limit=values["limit"],
        )
        return Response({"results": [message_row_shape(m) for m in messages], "hasMore": has_more})

    @extend_schema(
        request=inline_serializer(
            "MessageCreate",
            {
                "roomId": serializers.IntegerField(min_value=1, max_value=MAX_ID),
                "message": serializers.CharField(
                    help_text="1-4,000 characters once trimmed; stored exactly as typed."
                ),
                "clientId": serializers.CharField(
                    required=False,
                    max_length=services.CLIENT_ID_MAX_CHARS,
                    help_text="The sender's id for the message, to resend it safely.",
                ),
            },
        ),
        responses={201: MessageDoc, 200: MessageDoc, **errors(*WRITE_ERRORS, 403, 404)},
        parameters=[RETRY_AFTER],
        description="A repeated `clientId` from the same user answers 200 with the stored message.",
    )
    def post(self, request: Request) -> Response:
        user = request_user(request)
        data = self.MessageCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            message, created = services.message_send(
                user=user,
                room_id=values["roomId"],
                text=values["message"],
                client_id=values.get("clientId"),
            )
        except services.ChatError as error:
            raise_api_error(error)
        return Response(
            message_shape(message),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
