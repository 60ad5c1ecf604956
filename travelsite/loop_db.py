"""PostgreSQL transactions run by the event loop itself, for the hottest write (chat.store).

Channels runs Django's database work on one thread, one call after another. Each round trip
of a call there costs two trades of the GIL with the event loop, and the thread waits for the
loop to let go of the GIL before it can read PostgreSQL's answer: under load a store of eight
messages took 6.5 ms there, against 2.9 ms alone (docs/performance.md). On the loop, a
transaction awaits its answers like any other socket does.

The connections are psycopg's `AsyncConnection`, made from Django's own settings for the
database (the same adapters, so rows load as Django's connection loads them; time zone UTC,
as Django sets it; prepared statements as configured). Each event loop keeps its own idle
connections: a connection belongs to the loop it was made on.
"""

import asyncio
import weakref
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import django.db
import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from travelsite.sql import Rows, Statement

Result = TypeVar("Result")

#: Idle connections kept per event loop (chat.store runs one transaction at a time).
MAX_IDLE = 2


def available() -> bool:
    """Whether the database is PostgreSQL (the only one this module connects to)."""
    return bool(connections[DEFAULT_DB_ALIAS].vendor == "postgresql")


def connection_params() -> dict[str, Any]:
    """`psycopg.AsyncConnection.connect` arguments, from Django's for the default database."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    params = wrapper.get_connection_params()
    params.pop("cursor_factory", None)
    server_side = wrapper.settings_dict["OPTIONS"].get("server_side_binding") is True
    params["cursor_factory"] = psycopg.AsyncCursor if server_side else psycopg.AsyncClientCursor
    params["autocommit"] = True  # transactions are explicit (`conn.transaction()`)
    params.setdefault("connect_timeout", 10)  # seconds; a database that does not answer fails
    if settings.USE_TZ:  # Django's timestamptz loader expects the session in its time zone
        zone = f"-c TimeZone={wrapper.timezone_name}"
        params["options"] = f"{params['options']} {zone}" if params.get("options") else zone
    return params


class LoopConnections:
    """Transactions on the running loop's own idle connections (made when none is idle)."""

    def __init__(self, max_idle: int = MAX_IDLE) -> None:
        self._max_idle = max_idle
        self._idle: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, list[psycopg.AsyncConnection[Any]]
        ] = weakref.WeakKeyDictionary()

    async def run_steps(
        self, make_steps: Callable[[], Generator[Statement, Rows, Result]]
    ) -> Result:
        """Run the statements of `make_steps()` in one transaction; what the steps return.

        psycopg's errors are raised as Django's (`django.db.IntegrityError`, `OperationalError`,
        ...), as Django's own connection raises them, so callers handle one kind.
        """
        try:
            return await self._run_steps(make_steps)
        except psycopg.Error as error:
            raise _as_django_error(error) from error

    async def _run_steps(
        self, make_steps: Callable[[], Generator[Statement, Rows, Result]]
    ) -> Result:
        """An idle connection may have died meanwhile (PostgreSQL restarted): if it fails before
        its transaction began, nothing was sent, and the steps run again on a new connection."""
        idle = self._idle.setdefault(asyncio.get_running_loop(), [])
        while True:
            reused = bool(idle)
            conn = (
                idle.pop()
                if reused
                else await psycopg.AsyncConnection.connect(**connection_params())
            )
            began = False
            try:
                async with conn.transaction():
                    began = True
                    result = await _run(conn, make_steps())
            except psycopg.OperationalError:
                await conn.close()
                if reused and not began:
                    for stale in idle:  # they idled as long: start afresh
                        await stale.close()
                    idle.clear()
                    continue
                raise
            except BaseException:
                await self._put_back(idle, conn)
                raise
            await self._put_back(idle, conn)
            return result

    async def close_idle(self) -> None:
        """Close the running loop's idle connections (before the loop ends, e.g. in tests)."""
        idle = self._idle.pop(asyncio.get_running_loop(), [])
        for conn in idle:
            await conn.close()

    async def _put_back(
        self, idle: list[psycopg.AsyncConnection[Any]], conn: psycopg.AsyncConnection[Any]
    ) -> None:
        healthy = (
            not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )
        if healthy and len(idle) < self._max_idle:
            idle.append(conn)
        else:
            await conn.close()


def _as_django_error(error: psycopg.Error) -> Exception:
    """The `django.db` exception Django's connection raises for this psycopg one."""
    for name in (
        "DataError",
        "OperationalError",
        "IntegrityError",
        "InternalError",
        "ProgrammingError",
        "NotSupportedError",
        "InterfaceError",
    ):
        if isinstance(error, getattr(psycopg, name)):
            return getattr(django.db, name)(*error.args)
    return django.db.DatabaseError(*error.args)


async def _run(
    conn: psycopg.AsyncConnection[Any], steps: Generator[Statement, Rows, Result]
) -> Result:
    async with conn.cursor() as cursor:
        try:
            statement = next(steps)
            while True:
                await cursor.execute(statement.sql, statement.params)
                rows = await cursor.fetchall() if cursor.description is not None else None
                statement = steps.send(rows)
        except StopIteration as done:
            return done.value
