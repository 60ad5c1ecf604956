"""Transactions on the event loop's own connections (travelsite.loop_db) whose commits do not
wait for the disk, and `durable()`, which does: on the real PostgreSQL."""

import asyncio
from collections.abc import Generator
from typing import Any

import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.db import IntegrityError, OperationalError

from chat.models import ChatRoom
from tests.chat.helpers import lobby
from travelsite import loop_db, sql
from travelsite.sql import Rows, Statement

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def touch_room(room_id: int) -> Generator[Statement, Rows, Any]:
    """A write (so the commit has a record to put on disk), then the session's setting."""
    yield Statement(
        f"UPDATE {ChatRoom._meta.db_table} SET updated_at = now() WHERE id = %s",  # noqa: S608
        [room_id],
    )
    rows = yield Statement("SHOW synchronous_commit", [])
    return rows[0][0] if rows else None


async def wal_positions() -> tuple[int, int]:
    """(where the log ends, how far of it is on disk), as byte offsets."""
    async with await psycopg.AsyncConnection.connect(**loop_db.connection_params()) as conn:
        cursor = await conn.execute(
            "SELECT pg_current_wal_insert_lsn() - '0/0', pg_current_wal_flush_lsn() - '0/0'"
        )
        end, flushed = await cursor.fetchone()  # type: ignore[misc]
        return int(end), int(flushed)


def test_durable_returns_once_the_commits_before_it_are_on_disk() -> None:
    room = lobby()
    connections = loop_db.LoopConnections(wait_for_disk=False)

    async def commit_then_wait() -> tuple[str, int, int]:
        try:
            setting = await connections.run_steps(lambda: touch_room(room.pk))
            committed_up_to, _ = await wal_positions()
            await connections.durable()
            _, on_disk_up_to = await wal_positions()
            return setting, committed_up_to, on_disk_up_to
        finally:
            await connections.close_idle()

    setting, committed_up_to, on_disk_up_to = async_to_sync(commit_then_wait)()

    assert setting == "off"  # the transaction did not wait for the disk itself
    assert on_disk_up_to >= committed_up_to


def test_waiters_share_one_flush_and_a_flush_covers_only_earlier_commits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    room = lobby()
    connections = loop_db.LoopConnections(wait_for_disk=False)
    flushes: list[int] = []
    flush = connections._flush

    async def counted(state: Any) -> None:
        flushes.append(state.committed)
        await flush(state)

    monkeypatch.setattr(connections, "_flush", counted)

    async def scenario() -> None:
        try:
            await connections.durable()  # nothing committed yet: nothing to wait for
            await connections.run_steps(lambda: touch_room(room.pk))
            await asyncio.gather(*(connections.durable() for _ in range(5)))
            await connections.durable()  # already on disk
            await connections.run_steps(lambda: touch_room(room.pk))
            await connections.durable()
        finally:
            await connections.close_idle()

    async_to_sync(scenario)()

    assert flushes == [1, 2]


def test_durable_fails_when_postgresql_cannot_say_and_recovers_afterwards() -> None:
    room = lobby()
    connections = loop_db.LoopConnections(wait_for_disk=False)

    async def scenario() -> tuple[bool, str]:
        try:
            await connections.run_steps(lambda: touch_room(room.pk))
            await connections.durable()
            flusher = connections._state().flusher
            assert flusher is not None
            # What a PostgreSQL restart does to the waiting connection:
            async with await psycopg.AsyncConnection.connect(
                **loop_db.connection_params()
            ) as killer:
                await killer.execute(
                    "SELECT pg_terminate_backend(%s)", [flusher.conn.info.backend_pid]
                )
            await connections.run_steps(lambda: touch_room(room.pk))
            try:
                await connections.durable()
            except OperationalError:
                failed = True
            else:
                failed = False
            await connections.run_steps(lambda: touch_room(room.pk))
            await connections.durable()  # on a new connection
            return failed, "recovered"
        finally:
            await connections.close_idle()

    assert async_to_sync(scenario)() == (True, "recovered")


def test_commits_wait_for_the_disk_by_default() -> None:
    room = lobby()
    connections = loop_db.LoopConnections()

    async def scenario() -> str:
        try:
            return str(await connections.run_steps(lambda: touch_room(room.pk)))
        finally:
            await connections.close_idle()

    assert async_to_sync(scenario)() == "on"


def rename_then_read(room_id: int, names: list[str]) -> Generator[Statement, Rows, Any]:
    """Writes that return nothing around a read: the read sees the writes before it."""
    table = ChatRoom._meta.db_table
    rename = f"UPDATE {table} SET name = %s WHERE id = %s"  # noqa: S608
    yield Statement(rename, [names[0], room_id], returns_rows=False)
    rows = yield Statement(f"SELECT name FROM {table} WHERE id = %s", [room_id])  # noqa: S608
    for name in names[1:]:
        yield Statement(rename, [name, room_id], returns_rows=False)
    return rows[0][0] if rows else None


def test_begin_and_commit_travel_with_the_statements(round_trips: list[str]) -> None:
    """Two round trips for write, read, write: BEGIN with the first, COMMIT with the last."""
    room = lobby()
    connections = loop_db.LoopConnections()

    async def scenario() -> str:
        try:
            await connections.run_steps(lambda: touch_room(room.pk))  # a connection made
            round_trips.clear()
            return str(await connections.run_steps(lambda: rename_then_read(room.pk, ["a", "b"])))
        finally:
            await connections.close_idle()

    read = async_to_sync(scenario)()

    assert read == "a"
    assert len(round_trips) == 2
    assert round_trips[0].startswith("BEGIN; UPDATE") and round_trips[1].endswith("; COMMIT")
    room.refresh_from_db()
    assert room.name == "b"


def test_a_failing_write_that_returns_nothing_rolls_back_the_whole_transaction() -> None:
    room = lobby()
    name = room.name
    connections = loop_db.LoopConnections()

    async def scenario() -> tuple[bool, str]:
        try:
            try:
                # The last rename breaks NOT NULL; it goes with the COMMIT, which then never runs.
                await connections.run_steps(lambda: rename_then_read(room.pk, ["renamed", None]))  # type: ignore[list-item]
            except IntegrityError:
                failed = True
            else:
                failed = False
            # The connection is usable again at once (its failed transaction was ended).
            (idle,) = connections._state().idle
            read = await connections.run_steps(lambda: rename_then_read(room.pk, [name]))
            assert connections._state().idle == [idle]
            return failed, str(read)
        finally:
            await connections.close_idle()

    assert async_to_sync(scenario)() == (True, name)
    room.refresh_from_db()
    assert room.name == name


def read_then_rename_last(room_id: int, names: list[str | None]) -> Generator[Statement, Rows, Any]:
    """A read, then renames that go with it (`then`), the read last: one round trip with BEGIN
    and COMMIT, and the rows are the read's (taken before the renames)."""
    table = ChatRoom._meta.db_table
    rename = f"UPDATE {table} SET name = %s WHERE id = %s"  # noqa: S608
    rows = yield Statement(
        f"SELECT name FROM {table} WHERE id = %s",  # noqa: S608
        [room_id],
        then=tuple(Statement(rename, [name, room_id], returns_rows=False) for name in names),
        last=True,
    )
    return rows[0][0] if rows else None


def test_the_last_statement_goes_with_its_writes_and_the_commit(round_trips: list[str]) -> None:
    room = lobby()
    before = room.name
    connections = loop_db.LoopConnections()

    async def scenario() -> str:
        try:
            return str(
                await connections.run_steps(lambda: read_then_rename_last(room.pk, ["a", "b"]))
            )
        finally:
            await connections.close_idle()

    assert async_to_sync(scenario)() == before
    assert len(round_trips) == 1
    assert round_trips[0].startswith("BEGIN; SELECT name") and round_trips[0].endswith("; COMMIT")
    room.refresh_from_db()
    assert room.name == "b"


def test_a_failing_write_after_the_last_statement_rolls_everything_back() -> None:
    room = lobby()
    before = room.name
    connections = loop_db.LoopConnections()

    async def scenario() -> str:
        try:
            with pytest.raises(IntegrityError):  # NOT NULL: the COMMIT after it never runs
                await connections.run_steps(lambda: read_then_rename_last(room.pk, ["a", None]))
            return str(await connections.run_steps(lambda: read_then_rename_last(room.pk, [])))
        finally:
            await connections.close_idle()

    assert async_to_sync(scenario)() == before
    room.refresh_from_db()
    assert room.name == before


def going_on_after_the_last() -> Generator[Statement, Rows, Any]:
    yield Statement("SELECT 1", [], last=True)
    yield Statement("SELECT 2", [])


def test_steps_that_go_on_after_their_last_statement_are_refused() -> None:
    """On the loop (committed already: the bug is told, not hidden) and on Django's
    connection alike."""
    connections = loop_db.LoopConnections()

    async def scenario() -> None:
        try:
            await connections.run_steps(going_on_after_the_last)
        finally:
            await connections.close_idle()

    with pytest.raises(sql.StepsWentOn):
        async_to_sync(scenario)()
    with pytest.raises(sql.StepsWentOn):
        sql.run_steps(going_on_after_the_last())


def test_writes_that_follow_a_statement_may_not_return_rows() -> None:
    with pytest.raises(ValueError, match="not read"):
        Statement("SELECT 1", [], then=(Statement("SELECT 2", []),))


def test_django_connection_runs_a_statements_writes_after_it() -> None:
    room = lobby()
    before = room.name

    assert sql.run_steps(read_then_rename_last(room.pk, ["a", "b"])) == before
    room.refresh_from_db()
    assert room.name == "b"


def length_of(text: str) -> Generator[Statement, Rows, Any]:
    rows = yield Statement("SELECT length(%s), %s", [text, text])
    return rows[0] if rows else None


@pytest.mark.parametrize(
    "text",
    [
        'O\'Brien said "hi" \\ 100% %s %(x)s; COMMIT; --',
        "emoji \U0001f30d and accents éü",
        "x" * 4_000_000,  # more than a socket takes at once: the send waits to write
    ],
    ids=["quotes-and-placeholders", "unicode", "four-megabytes"],
)
def test_values_travel_as_literals_and_come_back_unchanged(text: str) -> None:
    connections = loop_db.LoopConnections()

    async def scenario() -> Any:
        try:
            return await connections.run_steps(lambda: length_of(text))
        finally:
            await connections.close_idle()

    assert async_to_sync(scenario)() == (len(text), text)


def test_a_transaction_leaves_no_socket_watched_by_the_loop() -> None:
    """The connection's socket is watched while a transaction runs, and not after it, nor
    after one that failed."""
    room = lobby()
    connections = loop_db.LoopConnections()

    async def scenario() -> tuple[bool, bool, bool]:
        selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
        try:
            await connections.run_steps(lambda: touch_room(room.pk))
            (wire,) = connections._state().idle
            fileno = wire.conn.pgconn.socket
            after_commit = fileno in selector.get_map()
            watched_during = False

            def watched() -> Generator[Statement, Rows, Any]:
                nonlocal watched_during
                watched_during = fileno in selector.get_map()
                yield Statement("SELECT 1", [])

            await connections.run_steps(watched)
            with pytest.raises(IntegrityError):
                await connections.run_steps(lambda: rename_then_read(room.pk, [None]))  # type: ignore[list-item]
            after_failure = fileno in selector.get_map()
            return after_commit, watched_during, after_failure
        finally:
            await connections.close_idle()

    assert async_to_sync(scenario)() == (False, True, False)


def add_one_then_count_prepared(number: int) -> Generator[Statement, Rows, Any]:
    yield Statement("SELECT 1", [])  # goes with BEGIN, as one simple-protocol query
    rows = yield Statement("SELECT %s::int + 1", [number])  # alone: bound by the server
    prepared = yield Statement(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%::int + 1"]
    )
    return rows[0][0] if rows else None, prepared[0][0] if prepared else None


def test_a_statement_run_alone_is_prepared_once_it_ran_often_enough(
    settings: Any,
) -> None:
    """As Django's own connection: prepared from the `prepare_threshold`-th run (2 here)."""
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options.get("server_side_binding") is True and options.get("prepare_threshold") == 2
    connections = loop_db.LoopConnections()

    async def scenario() -> list[Any]:
        try:
            return [
                await connections.run_steps(lambda n=n: add_one_then_count_prepared(n))  # type: ignore[misc]
                for n in (1, 2, 3)
            ]
        finally:
            await connections.close_idle()

    assert async_to_sync(scenario)() == [(2, 0), (3, 1), (4, 1)]
