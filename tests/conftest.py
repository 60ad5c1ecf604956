"""Shared fixtures: API clients, and real daphne processes for end-to-end tests.

Tests marked `services` need the real PostgreSQL and Redis (DATABASE_URL and REDIS_URL). Without
them they are skipped, except under REQUIRE_SERVICES=1 (CI), where a missing service fails them.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import StaffFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
SERVICES_CONFIGURED = bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SERVICES_CONFIGURED:
        return
    if os.environ.get("REQUIRE_SERVICES") == "1":
        raise pytest.UsageError("REQUIRE_SERVICES=1 but DATABASE_URL or REDIS_URL is unset")
    for item in items:
        if item.get_closest_marker("services"):
            item.add_marker(pytest.mark.skip(reason="needs DATABASE_URL and REDIS_URL"))


#: Rate limits high enough that tests which are not about them never meet them.
GENEROUS_RATE_LIMITS = {
    "messages": (10_000, 10_000.0),
    "typing": (10_000, 10_000.0),
    "rest_writes": (10_000, 10_000.0),
    "sign_in": (10_000, 10_000.0),
    "ws_frames": (10_000, 10_000.0),
}

GENEROUS_RATE_LIMIT_ENV = {
    f"RATE_LIMIT_{name.upper()}": f"{burst}/{rate}"
    for name, (burst, rate) in GENEROUS_RATE_LIMITS.items()
}


@pytest.fixture(autouse=True)
def _plain_http(settings: Any) -> None:
    """The test client speaks plain HTTP; the production profile would redirect it to HTTPS."""
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture(autouse=True)
def _generous_rate_limits(settings: Any, request: pytest.FixtureRequest) -> None:
    """Tests not about rate limits get limits they never meet (tests/hardening checks them)."""
    if not request.node.get_closest_marker("real_rate_limits"):
        settings.RATE_LIMITS = GENEROUS_RATE_LIMITS


# --- Users and API clients ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _async_orm_connections_closed() -> Iterator[None]:
    """Close the connections that async tests' ORM calls (`aget`, `sync_to_async`) opened on
    asgiref's one shared thread, which outlive the test; the test databases could otherwise
    not be dropped at the end ("is being accessed by other users")."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    executor = SyncToAsync.single_thread_executor
    if executor._threads:  # that thread was used
        executor.submit(connections.close_all).result(timeout=10)


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of each round trip the event loop's connections make from now on
    (travelsite.loop_db: a query of one or several statements, or one statement alone)."""
    from travelsite import loop_db

    trips: list[str] = []
    query, run_alone = loop_db._Wire.query, loop_db._Wire.run_alone

    async def counted_query(wire: Any, sql: bytes, **options: Any) -> Any:
        trips.append(sql.decode())
        return await query(wire, sql, **options)

    async def counted_alone(wire: Any, statement: Any) -> Any:
        trips.append(statement.sql)
        return await run_alone(wire, statement)

    monkeypatch.setattr(loop_db._Wire, "query", counted_query)
    monkeypatch.setattr(loop_db._Wire, "run_alone", counted_alone)
    return trips


@pytest.fixture
def redis_url() -> str:
    """The Redis of the tests that talk to one (REDIS_URL), or skip."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs REDIS_URL")
    return url


@pytest.fixture
def user(db: None) -> User:
    return UserFactory.create()


@pytest.fixture
def staff(db: None) -> User:
    return StaffFactory.create()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def api_client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def token_for(user: User) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def session_cookie_for(user: User) -> str:
    """A `Cookie` header value signing a browser (or a WebSocket handshake) in as `user`."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


# --- Live daphne processes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def live_database_url() -> str:
    db = settings.DATABASES["default"]
    return "postgres://{user}@{host}:{port}/{name}".format(
        user=db["USER"] or "postgres",
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        name=db["NAME"],
    )


@dataclass
class DaphneServer:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int | None = None) -> None:
        if self.process.poll() is None:
            if sig is None:
                self.process.terminate()
            else:
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_daphne(tmp_dir: Path, extra_env: dict[str, str], port: int | None = None) -> DaphneServer:
    """Start `daphne travelsite.asgi:application` on a loopback port, on the test database."""
    port = port or free_port()
    env = {
        **os.environ,
        "DATABASE_URL": live_database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    log_path = tmp_dir / f"daphne-{port}.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "travelsite.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = DaphneServer(port=port, process=process, log_path=log_path, env=extra_env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited early:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"daphne did not become healthy:\n{server.log()}")


def wait_for_other_connections_to_settle(timeout: float = 5.0, quiet_for: float = 0.3) -> None:
    """Wait until no other session has been inside a transaction on the test database for
    `quiet_for` seconds in a row.

    A live server finishes work after a test's last assertion (a socket's disconnect marks the
    user offline, for instance); flushing tables under it would deadlock. One idle look was not
    enough on a slow host: a disconnect's write could start just after it (seen once in CI).
    """
    from django.db import connection

    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state NOT IN ('idle')"
            )
            (busy,) = cursor.fetchone()
        now = time.monotonic()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= quiet_for:
            return
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _live_servers_settle(request: pytest.FixtureRequest) -> Iterator[None]:
    """Before a live-server test's tables are flushed, let the servers finish their writes."""
    if not {"daphne_server", "daphne_factory"} & set(request.fixturenames):
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    time.sleep(0.2)  # sockets closed by the test are still being torn down by the server
    wait_for_other_connections_to_settle()


@pytest.fixture(scope="session")
def daphne_server(
    django_db_setup: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    """One daphne process for the session, on the test database and the real Redis.

    Tests using it must also request `transactional_db` so what they create is committed.
    """
    server = start_daphne(
        tmp_path_factory.mktemp("daphne"),
        {"WS_AUTH_TIMEOUT_SECONDS": "2", **GENEROUS_RATE_LIMIT_ENV},
    )
    yield server
    server.stop()


@pytest.fixture
def daphne_factory(
    django_db_setup: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., DaphneServer]]:
    """Start extra daphne processes (several processes, crashes); all stopped at the end."""
    servers: list[DaphneServer] = []

    def start(
        real_rate_limits: bool = False, port: int | None = None, **extra_env: str
    ) -> DaphneServer:
        if not real_rate_limits:
            extra_env = {**GENEROUS_RATE_LIMIT_ENV, **extra_env}
        server = start_daphne(tmp_path_factory.mktemp("daphne"), extra_env, port=port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
