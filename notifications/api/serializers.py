from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifications.models import Notification, NotificationType

MAX_ID = 2**63 - 1
#: Most recipients (userIds) one POST may name; use `all: true` beyond that.
MAX_RECIPIENTS = 10_000
#: Most ids one PATCH or DELETE may name.
MAX_IDS = 1000
MAX_DATA_DEPTH = 10


@extend_schema_field(
    {"type": "string", "enum": list(NotificationType.values)}, component_name="NotificationType"
)
class NotificationTypeField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=NotificationType.choices, **kwargs)


class NotificationOutput(serializers.ModelSerializer[Notification]):
    isRead = serializers.BooleanField(source="is_read")
    createdAt = serializers.DateTimeField(source="created_at")
    type = NotificationTypeField()

    class Meta:
        model = Notification
        fields = ["id", "type", "title", "message", "isRead", "createdAt", "link", "data"]
        extra_kwargs = {"link": {"required": True}, "data": {"required": True}}


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true/false (DRF would also take "yes", "on", 1...)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictCharField(serializers.CharField):
    """Only JSON strings (DRF would also take numbers)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


def id_list(*, max_length: int, **kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        allow_empty=False,
        max_length=max_length,
        **kwargs,
    )


def _bad_text(text: str) -> bool:
    """NUL and lone surrogates cannot be stored (PostgreSQL refuses them)."""
    return "\x00" in text or any("\ud800" <= char <= "\udfff" for char in text)


def validate_json_object(value: Any) -> None:
    """An object whose strings can be stored, nested at most MAX_DATA_DEPTH deep."""
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be a JSON object.")
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DATA_DEPTH:
            raise serializers.ValidationError(f"Nested deeper than {MAX_DATA_DEPTH} levels.")
        if isinstance(item, str):
            if _bad_text(item):
                raise serializers.ValidationError("Strings may not contain NUL or surrogates.")
        elif isinstance(item, dict):
            for key, child in item.items():
                if _bad_text(key):
                    raise serializers.ValidationError("Keys may not contain NUL or surrogates.")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
