"""OpenAPI descriptions every REST API shares: error answers (see travelsite.api), parameters.

Views list the codes they can answer: `responses={200: Shape, **errors(400, 401, 404)}`, and
add `RETRY_AFTER` to their parameters when they list 429. Views with query or path parameters
use `schema = ApiSchema()`.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

_DETAIL = inline_serializer("ErrorDetail", {"detail": serializers.CharField()})

ERROR_RESPONSES = {
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description='Invalid input: field errors `{"field": ["..."]}` or `{"detail": "..."}`.',
    ),
    401: OpenApiResponse(_DETAIL, description="Not signed in, or the token was revoked."),
    403: OpenApiResponse(_DETAIL, description="Signed in but not allowed."),
    404: OpenApiResponse(
        _DETAIL,
        description="No such object, or one the caller may not see (answered the same way).",
    ),
    413: OpenApiResponse(_DETAIL, description="Request body over 1 MiB."),
    429: OpenApiResponse(_DETAIL, description="Rate limited: retry after `Retry-After` seconds."),
}

#: The 429 answer's header.
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before retrying.",
)

#: What any write can also answer: bad input, not signed in, body too large, rate limited.
WRITE_ERRORS = (400, 401, 413, 429)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The shared error answers for `codes`, to merge into `extend_schema(responses=...)`."""
    return {code: ERROR_RESPONSES[code] for code in codes}


class ApiSchema(AutoSchema):
    """Describes parameters the way Django and DRF read them.

    - An optional query parameter sent empty (`?limit=`) counts as not given: `allowEmptyValue`.
    - An `<int:...>` path parameter matches digits only: `minimum: 0` (`/api/bookings/-1` is
      no route at all, 404).
    - PATCH bodies are validated whole (no partial update): their required fields stay required.
    """

    def _get_request_for_media_type(self, serializer: Any, direction: str = "request") -> Any:
        if self.method != "PATCH":
            return super()._get_request_for_media_type(serializer, direction)
        # drf-spectacular makes a PATCH body's serializer partial; describe it as for PUT.
        self.method = "PUT"
        try:
            return super()._get_request_for_media_type(serializer, direction)
        finally:
            self.method = "PATCH"

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super()._get_parameters()
        for parameter in parameters:
            if parameter["in"] == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
            elif parameter["in"] == "path" and parameter["schema"].get("type") == "integer":
                parameter["schema"].setdefault("minimum", 0)
        return parameters
