"""`/healthz` (can this process reach PostgreSQL and Redis?) and `/metrics` (Prometheus)."""

import hmac

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from travelsite import metrics
from travelsite.token_auth import user_for_token


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        return f"error: {type(error).__name__}"
    return "ok"


def redis_status() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception as error:
        return f"error: {type(error).__name__}"
    return "ok"


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"db": database_status(), "redis": redis_status()}
    healthy = all(value in ("ok", "not configured") for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)


def _metrics_caller_allowed(request: HttpRequest) -> int:
    """200 when the caller may scrape, else 401 (nobody) or 403 (someone, not staff)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() == "bearer" and settings.METRICS_TOKEN:
        return 200 if hmac.compare_digest(credential, settings.METRICS_TOKEN) else 403
    user = request.user if request.user.is_authenticated else None
    if scheme.lower() == "token" and credential:
        user = user_for_token(credential)
        if user is None:
            return 401
    if user is None:
        return 401
    return 200 if user.is_staff else 403


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format: staff session or token, or `Authorization: Bearer METRICS_TOKEN`."""
    status = _metrics_caller_allowed(request)
    if status != 200:
        response = JsonResponse({"detail": "Staff or the scrape token only."}, status=status)
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST)
