"""Settings for the travel site, read from the environment (see README "Configuration").

With no environment at all the site runs on a SQLite file and the in-memory channel layer,
which is what a newcomer's first `make run` uses. Production sets DATABASE_URL, REDIS_URL,
SECRET_KEY, DEBUG=0 and ALLOWED_HOSTS.
"""

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Core -------------------------------------------------------------------------------------

DEBUG: bool = env.bool("DEBUG", default=False)
SECRET_KEY: str = env.str(
    "SECRET_KEY", default="django-insecure-dev-only-key-set-SECRET_KEY-in-production"
)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "django_tasks",
    "django_tasks_db",
    "accounts",
    "travel",
    "chat",
    "notifications",
    "presence",
]

MIDDLEWARE = [
    "travelsite.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "travelsite.urls"
ASGI_APPLICATION = "travelsite.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
# Under ASGI every request may run in a different thread, so persistent connections would leak
# one connection per thread: CONN_MAX_AGE stays 0 and PostgreSQL uses psycopg's pool instead.

DATABASES: dict[str, dict[str, Any]] = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
    # Prepared statements: parameters bound by the server, and a query run twice on a
    # connection is prepared there, so later runs skip parsing and planning (a message send
    # 2.1-2.4 -> 1.4-1.6 ms; docs/performance.md). Off (client-side binding, as Django's
    # default) behind a pooler that cannot keep them, e.g. PgBouncer in transaction mode before
    # 1.21 (docs/deployment.md).
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 2
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

# A socket's message is broadcast as soon as it is committed, and acknowledged to its sender once
# the commit is on disk (PostgreSQL only: chat.store, travelsite.loop_db). The wait for the disk
# is then no longer part of every recipient's latency (on shared VMs 0.6 ms at the median, and
# 20-100 ms for one commit in a hundred or two). Off: recipients hear of a message only once it
# is on disk; its ack waits as long as before.
CHAT_BROADCAST_BEFORE_FLUSH: bool = env.bool("CHAT_BROADCAST_BEFORE_FLUSH", default=True)

# The garbage collector run by a timer on a server process' event loop, so that its pauses fall
# between messages rather than inside one (travelsite/gc_tuning.py). Off: CPython's own
# thresholds, which collect in the middle of whatever allocates.
GC_BETWEEN_EVENTS: bool = env.bool("GC_BETWEEN_EVENTS", default=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and the channel layer -------------------------------------------------------------


def _isolate_test_worker() -> None:
    """Give a pytest-xdist worker Redis to itself: its own database and channel-layer prefix
    (Redis pub/sub ignores databases), as pytest-django gives it its own PostgreSQL database.

    Written to the environment, so the daphne processes its tests start inherit them (and,
    inheriting the worker's name too, come to the same values again).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    url = os.environ.get("REDIS_URL")
    if not worker.startswith("gw") or not url:
        return
    os.environ["REDIS_URL"] = urlunsplit(urlsplit(url)._replace(path=f"/{8 + int(worker[2:])}"))
    os.environ["CHANNEL_LAYER_PREFIX"] = f"travelsite-{worker}"


_isolate_test_worker()
REDIS_URL: str | None = env.str("REDIS_URL", default=None) or None

# The pub/sub layer (default) publishes an event once per group and fans it out to the
# process's own sockets in memory: one Redis command per group send instead of several per
# recipient (bench/README.md). The list-based layer ("core") keeps per-channel inboxes in Redis
# with a capacity; either way delivery is at most once and clients fill gaps with `sync`.
CHANNEL_LAYER_KIND: str = env.str("CHANNEL_LAYER", default="pubsub")
if REDIS_URL and CHANNEL_LAYER_KIND == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "travelsite.channel_layer.ResilientPubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env.int("REDIS_MAX_CONNECTIONS", default=1000),
                    }
                ],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="travelsite"),
            },
        }
    }
elif REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # redis-py fails instead of waiting when its pool is full, so the
                        # pool is sized for many sockets joining and leaving groups at once.
                        "max_connections": env.int("REDIS_MAX_CONNECTIONS", default=1000),
                    }
                ],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="travelsite"),
                # A socket's inbox holds this many undelivered events before new ones are
                # dropped; clients notice gaps by message id and fill them with `sync`.
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=1000),
                "expiry": 60,
                "group_expiry": 86400,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Auth -------------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- REST API ---------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes unauthenticated calls 401, not 403.
        "travelsite.token_auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["travelsite.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "travelsite.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["travelsite.throttling.WriteRateThrottle"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Travel site real-time API",
    "DESCRIPTION": (
        "Chat, notifications, presence and bookings. Authenticate with the browser session "
        "(CSRF on unsafe methods) or `Authorization: Token <key>` from `POST /api/auth/token`. "
        "The WebSocket events are documented in docs/websocket.md."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# Bodies over 1 MiB are refused with 413 (travelsite.middleware).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- Internationalisation and static files ----------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Only needed for `collectstatic` (e.g. to put a CDN in front); WhiteNoise serves without it.
STATIC_ROOT = env.str("STATIC_ROOT", default=None)
# WhiteNoise serves straight from the app and project static folders, so `daphne` alone
# serves the whole site without a collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security (production profile when DEBUG is off) ------------------------------------------
# Behind TLS these are all on; a plain-HTTP deployment (or the local end-to-end tests) can turn
# the HTTPS-only ones off with SECURE_SSL_REDIRECT=0 / SECURE_COOKIES=0.

SECURE_SSL_REDIRECT: bool = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
_secure_cookies: bool = env.bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = _secure_cookies
CSRF_COOKIE_SECURE = _secure_cookies
SECURE_HSTS_SECONDS: int = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Real-time --------------------------------------------------------------------------------

WS_AUTH_TIMEOUT_SECONDS: float = env.float("WS_AUTH_TIMEOUT_SECONDS", default=10.0)
# Below daphne's own limit (autobahn's default of 1 MiB); larger frames get an error frame.
WS_MAX_FRAME_BYTES = 64 * 1024
# A client that stops reading is dropped once this much unsent data waits for it (it reconnects
# and catches up with `sync`); see travelsite/transport.py.
WS_MAX_BUFFERED_BYTES: int = env.int("WS_MAX_BUFFERED_BYTES", default=4 * 1024 * 1024)

# --- Rate limits ------------------------------------------------------------------------------
# (burst, per second) token buckets, shared by all processes through Redis (travelsite.ratelimit).
# Override one with RATE_LIMIT_<NAME>="burst/per_second", e.g. RATE_LIMIT_MESSAGES="40/10".


def _rate(name: str, burst: int, per_second: float) -> tuple[int, float]:
    raw = env.str(f"RATE_LIMIT_{name.upper()}", default="")
    if raw:
        burst_text, _, rate_text = raw.partition("/")
        return int(burst_text), float(rate_text)
    return burst, per_second


RATE_LIMITS: dict[str, tuple[int, float]] = {
    # per user, WebSocket and REST together: at least 20 in a burst and 5 a second sustained
    "messages": _rate("messages", 25, 6),
    "typing": _rate("typing", 10, 4),
    # per user, every REST write (POST/PUT/PATCH/DELETE)
    "rest_writes": _rate("rest_writes", 60, 10),
    # per client IP: sign-in form and token requests
    "sign_in": _rate("sign_in", 10, 0.2),
    # per socket, in memory: frames of any kind (a flood is refused, then closed)
    "ws_frames": _rate("ws_frames", 100, 50),
}
# A socket whose frames keep being refused this many times within 10 s is closed (code 4008).
WS_FLOOD_CLOSE_AFTER: int = env.int("WS_FLOOD_CLOSE_AFTER", default=300)

# --- Metrics ----------------------------------------------------------------------------------
# /metrics answers staff (session or token) and, when set, `Authorization: Bearer <token>`.
METRICS_TOKEN: str = env.str("METRICS_TOKEN", default="")

# --- Background jobs and email ---------------------------------------------------------------
# Delayed jobs (the email fallback of unread notifications) go through django-tasks. The
# database backend stores them in the `django_tasks_db_dbtaskresult` table and `make worker`
# (`manage.py db_worker`) runs them. TASKS_BACKEND=immediate runs each job in-process at
# enqueue time, ignoring delays; TASKS_BACKEND=dummy only records them (tests).

_TASK_BACKENDS = {
    "database": "django_tasks_db.DatabaseBackend",
    "immediate": "django_tasks.backends.immediate.ImmediateBackend",
    "dummy": "django_tasks.backends.dummy.DummyBackend",
}
_tasks_backend: str = env.str("TASKS_BACKEND", default="database")
TASKS: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": _TASK_BACKENDS.get(_tasks_backend, _tasks_backend)}
}

# Development prints emails on the console; production sets an SMTP backend (EMAIL_HOST, ...).
EMAIL_BACKEND: str = env.str(
    "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST: str = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT: int = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER: str = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD: str = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS: bool = env.bool("EMAIL_USE_TLS", default=False)
# Only read by the file-based backend.
EMAIL_FILE_PATH: str | None = env.str("EMAIL_FILE_PATH", default=None)
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="Wanderly <no-reply@localhost>")
# Absolute links in emails are built on this (no trailing slash).
SITE_URL: str = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# A notification still unread this long after it was created is emailed to an offline
# recipient who turned email on for its type (docs/notifications.md "Email").
NOTIFICATION_EMAIL_DELAY_SECONDS: int = env.int("NOTIFICATION_EMAIL_DELAY_SECONDS", default=600)

# --- Logging ----------------------------------------------------------------------------------
# LOG_FORMAT=plain (default, for people reading a terminal) or json (one JSON object per line,
# travelsite/logging.py, for a log collector). Log ids, never message contents or tokens.

LOG_FORMAT: str = env.str("LOG_FORMAT", default="plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "travelsite.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's defaults give "django" its own DEBUG-only console handler (a second, plain
        # copy of each line) and mail_admins: everything goes through the root handler instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "INFO"},
    },
}
