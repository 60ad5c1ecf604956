"""REST plumbing shared by every app's API: the error format and common errors."""

import logging
import math
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest
from redis.exceptions import RedisError
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotAuthenticated, Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from travelsite.ratelimit import RateLimited

logger = logging.getLogger(__name__)


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A backing service is unavailable; try again shortly."
    default_code = "unavailable"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus 413 for oversized bodies and 503 when PostgreSQL is down."""
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "Request body too large (limit 1 MiB)."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, RateLimited):
        exc = Throttled(wait=math.ceil(exc.retry_after), detail=str(exc))
    elif isinstance(exc, RedisError | ConnectionError):
        logger.warning("redis unavailable: %s", exc)
        exc = ServiceUnavailable()
    if isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DatabaseError) and "connection" in str(exc).lower()
    ):
        logger.warning("database unavailable: %s", exc)
        exc = ServiceUnavailable()
    return drf_exception_handler(exc, context)


def request_user(request: Request | HttpRequest) -> User:
    """The signed-in user of a request that passed IsAuthenticated (or the admin's login)."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise NotAuthenticated()
    return user


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))
