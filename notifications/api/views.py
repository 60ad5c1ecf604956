from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import selectors, services
from notifications.api.serializers import (
    MAX_IDS,
    MAX_RECIPIENTS,
    NotificationOutput,
    NotificationTypeField,
    StrictBooleanField,
    StrictCharField,
    id_list,
    validate_json_object,
)
from travelsite.api import request_user
from travelsite.openapi import RETRY_AFTER, WRITE_ERRORS, ApiSchema, errors


def _ids_or_all(attrs: dict[str, Any]) -> dict[str, Any]:
    """Exactly one of `ids`/`userIds` (a list) or `all: true`."""
    has_list = attrs.get("ids", attrs.get("userIds")) is not None
    if has_list == bool(attrs.get("all")):
        raise serializers.ValidationError({"detail": "Give either a list of ids or all: true."})
    return attrs


class NotificationsApi(APIView):
    """The caller's notifications: list, mark read, delete; staff also send."""

    permission_classes = [IsAuthenticated]
    schema = ApiSchema()

    class NotificationListQuery(serializers.Serializer):
        unread = serializers.BooleanField(required=False, default=False)
        type = NotificationTypeField(required=False)
        before = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
        limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100)

    class NotificationSendInput(serializers.Serializer):
        userIds = id_list(max_length=MAX_RECIPIENTS, required=False)
        all = StrictBooleanField(required=False, default=False)
        type = NotificationTypeField()
        title = StrictCharField(max_length=200)
        message = StrictCharField(max_length=10_000)
        link = StrictCharField(max_length=500, required=False, default="", allow_blank=True)
        # Declared fields leave Serializer.data alone at runtime; only the stubs object.
        data = serializers.JSONField(  # type: ignore[assignment]
            required=False, default=dict, validators=[validate_json_object]
        )
        dedupeKey = StrictCharField(max_length=200, required=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            return _ids_or_all(attrs)

    class NotificationMarkReadInput(serializers.Serializer):
        ids = id_list(max_length=MAX_IDS, required=False)
        all = StrictBooleanField(required=False, default=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            return _ids_or_all(attrs)

    class NotificationDeleteInput(serializers.Serializer):
        ids = id_list(max_length=MAX_IDS)

    @extend_schema(
        operation_id="notifications_list",
        summary="The caller's notifications, newest first",
        parameters=[NotificationListQuery],
        responses={
            200: inline_serializer(
                "NotificationList",
                {
                    "results": NotificationOutput(many=True),
                    "unreadCount": serializers.IntegerField(),
                    "hasMore": serializers.BooleanField(),
                },
            ),
            **errors(400, 401),
        },
    )
    def get(self, request: Request) -> Response:
        query = self.NotificationListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        user = request_user(request)
        rows, has_more = selectors.notification_list(
            user_id=user.pk,
            unread_only=query.validated_data["unread"],
            type=query.validated_data.get("type"),
            before=query.validated_data.get("before"),
            limit=query.validated_data["limit"],
        )
        return Response(
            {
                "results": NotificationOutput(rows, many=True).data,
                "unreadCount": selectors.notification_unread_count(user_id=user.pk),
                "hasMore": has_more,
            }
        )

    @extend_schema(
        operation_id="notifications_send",
        summary="Send a notification to users or everyone (staff)",
        description="Unknown or inactive user ids are skipped; `created` counts real rows.",
        request=NotificationSendInput,
        responses={
            201: inline_serializer(
                "NotificationSendResult", {"created": serializers.IntegerField()}
            ),
            **errors(*WRITE_ERRORS, 403),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request: Request) -> Response:
        if not request_user(request).is_staff:
            raise PermissionDenied("Only staff send notifications.")
        data = self.NotificationSendInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        content = {
            "type": values["type"],
            "title": values["title"],
            "message": values["message"],
            "link": values["link"],
            "data": values["data"],
            "dedupe_key": values.get("dedupeKey"),
        }
        try:
            if values["all"]:
                created = services.notification_broadcast_all(**content)
            else:
                created = services.notification_create(user_ids=values["userIds"], **content)
        except services.NotificationError as error:
            raise ValidationError({"detail": str(error)}) from None
        return Response({"created": created}, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="notifications_mark_read",
        summary="Mark the caller's notifications read",
        request=NotificationMarkReadInput,
        responses={
            200: inline_serializer(
                "NotificationMarkReadResult",
                {"updated": serializers.IntegerField(), "unreadCount": serializers.IntegerField()},
            ),
            **errors(*WRITE_ERRORS),
        },
        parameters=[RETRY_AFTER],
    )
    def patch(self, request: Request) -> Response:
        data = self.NotificationMarkReadInput(data=request.data)
        data.is_valid(raise_exception=True)
        updated, unread = services.notifications_mark_read(
            user=request_user(request),
            ids=data.validated_data.get("ids"),
            all=data.validated_data["all"],
        )
        return Response({"updated": updated, "unreadCount": unread})

    @extend_schema(
        operation_id="notifications_delete",
        summary="Delete the caller's notifications",
        description=(
            'Body `{"ids": [1, 2]}` (1-1000 ids; OpenAPI cannot show DELETE bodies). Ids '
            "that are not the caller's are ignored and not counted."
        ),
        request=NotificationDeleteInput,
        responses={
            200: inline_serializer(
                "NotificationDeleteResult",
                {"deleted": serializers.IntegerField(), "unreadCount": serializers.IntegerField()},
            ),
            **errors(*WRITE_ERRORS),
        },
        parameters=[RETRY_AFTER],
    )
    def delete(self, request: Request) -> Response:
        data = self.NotificationDeleteInput(data=request.data)
        data.is_valid(raise_exception=True)
        deleted, unread = services.notifications_delete(
            user=request_user(request), ids=data.validated_data["ids"]
        )
        return Response({"deleted": deleted, "unreadCount": unread})


class NotificationPreferenceOutput(serializers.Serializer):
    type = NotificationTypeField()
    inApp = serializers.BooleanField()
    email = serializers.BooleanField()
    locked = serializers.BooleanField(help_text="In-app delivery cannot be turned off.")


class NotificationPreferenceItemInput(serializers.Serializer):
    type = NotificationTypeField()
    inApp = StrictBooleanField()
    email = StrictBooleanField(required=False, default=False)


_PREFERENCE_LIST = inline_serializer(
    "NotificationPreferenceList", {"results": NotificationPreferenceOutput(many=True)}
)


class NotificationPreferencesApi(APIView):
    """The caller's per-type choices (no row: in-app on, email off); PUT sets the listed types."""

    permission_classes = [IsAuthenticated]

    class NotificationPreferencesInput(serializers.Serializer):
        preferences = serializers.ListField(
            child=NotificationPreferenceItemInput(), allow_empty=False, max_length=20
        )

    @extend_schema(responses={200: _PREFERENCE_LIST, **errors(401)})
    def get(self, request: Request) -> Response:
        user = request_user(request)
        return Response({"results": selectors.notification_preferences(user_id=user.pk)})

    @extend_schema(
        request=NotificationPreferencesInput,
        responses={200: _PREFERENCE_LIST, **errors(*WRITE_ERRORS)},
        parameters=[RETRY_AFTER],
    )
    def put(self, request: Request) -> Response:
        data = self.NotificationPreferencesInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            results = services.notification_preferences_set(
                user=request_user(request),
                preferences=[
                    services.PreferenceInput(
                        type=item["type"], in_app=item["inApp"], email=item["email"]
                    )
                    for item in data.validated_data["preferences"]
                ],
            )
        except services.NotificationError as error:
            raise ValidationError({"detail": str(error)}) from None
        return Response({"results": results})
