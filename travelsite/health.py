"""`/healthz`: whether this process can reach PostgreSQL and Redis."""

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


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
