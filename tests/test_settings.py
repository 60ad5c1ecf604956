"""Settings come from the environment, with defaults that run the site with no environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"],
    "name": str(db["NAME"]),
    "pool": db.get("OPTIONS", {}).get("pool"),
    "server_side_binding": db.get("OPTIONS", {}).get("server_side_binding"),
    "prepare_threshold": db.get("OPTIONS", {}).get("prepare_threshold"),
    "conn_max_age": db["CONN_MAX_AGE"],
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "layer_hosts": settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("hosts"),
    "layer_prefix": settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix"),
    "debug": settings.DEBUG,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "csrf_trusted_origins": settings.CSRF_TRUSTED_ORIGINS,
    "secret_key": settings.SECRET_KEY,
}))
"""


def settings_under(env: dict[str, str]) -> dict[str, object]:
    base = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "travelsite.settings"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(result.stdout)
    assert isinstance(loaded, dict)
    return loaded


def test_no_environment_means_sqlite_and_the_in_memory_layer() -> None:
    loaded = settings_under({})
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert str(loaded["name"]).endswith("db.sqlite3")
    assert loaded["layer"] == "channels.layers.InMemoryChannelLayer"
    assert loaded["debug"] is False


def test_database_url_selects_postgresql_with_psycopg_pool_and_no_persistent_connections() -> None:
    loaded = settings_under({"DATABASE_URL": "postgres://u:p@db.internal:6543/travel"})
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["name"] == "travel"
    assert isinstance(loaded["pool"], dict) and loaded["pool"]["max_size"] >= 1
    assert loaded["conn_max_age"] == 0
    assert loaded["server_side_binding"] is True and loaded["prepare_threshold"] == 2


def test_prepared_statements_can_be_turned_off_for_a_transaction_pooler() -> None:
    loaded = settings_under(
        {"DATABASE_URL": "postgres://u:p@pgbouncer:6432/travel", "DB_PREPARED_STATEMENTS": "0"}
    )
    assert loaded["server_side_binding"] is None and loaded["prepare_threshold"] is None


def test_redis_url_selects_the_redis_pubsub_layer_with_a_sized_pool() -> None:
    loaded = settings_under({"REDIS_URL": "redis://cache.internal:6380/3"})
    assert loaded["layer"] == "travelsite.channel_layer.ResilientPubSubChannelLayer"
    hosts = loaded["layer_hosts"]
    assert isinstance(hosts, list)
    assert hosts[0]["address"] == "redis://cache.internal:6380/3"
    assert hosts[0]["max_connections"] >= 500


def test_each_pytest_xdist_worker_gets_redis_to_itself_and_passes_it_on_unchanged() -> None:
    worker = settings_under(
        {"REDIS_URL": "redis://cache.internal:6380/1", "PYTEST_XDIST_WORKER": "gw3"}
    )
    assert worker["layer_hosts"][0]["address"] == "redis://cache.internal:6380/11"  # type: ignore[index]
    assert worker["layer_prefix"] == "travelsite-gw3"
    # A daphne process started by that worker inherits its environment: the same values again.
    inherited = {
        "REDIS_URL": "redis://cache.internal:6380/11",
        "CHANNEL_LAYER_PREFIX": "travelsite-gw3",
        "PYTEST_XDIST_WORKER": "gw3",
    }
    started = settings_under(inherited)
    assert started["layer_hosts"][0]["address"] == "redis://cache.internal:6380/11"  # type: ignore[index]
    assert started["layer_prefix"] == "travelsite-gw3"
    assert (
        settings_under({"REDIS_URL": "redis://cache.internal:6380/1"})["layer_prefix"]
        == "travelsite"
    )


def test_the_list_based_redis_layer_can_be_chosen() -> None:
    loaded = settings_under({"REDIS_URL": "redis://cache.internal:6380/3", "CHANNEL_LAYER": "core"})
    assert loaded["layer"] == "channels_redis.core.RedisChannelLayer"


def test_hosts_origins_secret_and_debug_come_from_the_environment() -> None:
    loaded = settings_under(
        {
            "ALLOWED_HOSTS": "travel.example,www.travel.example",
            "CSRF_TRUSTED_ORIGINS": "https://travel.example,https://www.travel.example",
            "SECRET_KEY": "s" * 60,
            "DEBUG": "1",
        }
    )
    assert loaded["allowed_hosts"] == ["travel.example", "www.travel.example"]
    assert loaded["csrf_trusted_origins"] == [
        "https://travel.example",
        "https://www.travel.example",
    ]
    assert loaded["secret_key"] == "s" * 60
    assert loaded["debug"] is True


def test_production_profile_passes_check_deploy() -> None:
    env = {
        "PATH": os.environ["PATH"],
        "DEBUG": "0",
        "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
        "ALLOWED_HOSTS": "travel.example",
        "CSRF_TRUSTED_ORIGINS": "https://travel.example",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_insecure_default_secret_fails_check_deploy() -> None:
    env = {"PATH": os.environ["PATH"], "DEBUG": "0", "ALLOWED_HOSTS": "travel.example"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stdout + result.stderr


def test_openapi_schema_generates_without_warnings() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--fail-on-warn", "--file", os.devnull],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
