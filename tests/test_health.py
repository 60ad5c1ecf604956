import pytest
from django.test import Client, override_settings

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def test_healthz_is_ok_when_postgres_and_redis_answer(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"db": "ok", "redis": "ok"}


def test_healthz_is_503_naming_redis_when_redis_is_unreachable(client: Client) -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["db"] == "ok"
    assert body["redis"].startswith("error")


def test_healthz_without_redis_configured_counts_as_ok(client: Client) -> None:
    with override_settings(REDIS_URL=None):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"db": "ok", "redis": "not configured"}
