"""REST throttling on the shared Redis rate limits (apart from travelsite.api: imported early)."""

from typing import Any

from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from travelsite import ratelimit


def client_ip(request: HttpRequest | Request) -> str:
    """The caller's address (behind a proxy, configure it to set REMOTE_ADDR correctly)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


class WriteRateThrottle(BaseThrottle):
    """Every REST write counts against the caller's `rest_writes` limit (shared by processes).

    Over the limit, ratelimit.RateLimited becomes 429 with Retry-After (travelsite.api).
    """

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        user = request.user
        if user is not None and user.is_authenticated:
            subject = f"user:{user.pk}"
        else:
            subject = f"ip:{client_ip(request)}"
        ratelimit.check("rest_writes", subject)
        return True
