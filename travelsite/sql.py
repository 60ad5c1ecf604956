"""Plain SQL for the hottest statements, with values read back as the ORM would load them.

Compiling a queryset costs more Python time than PostgreSQL spends on a short indexed query (a
history page: 0.9 ms of 1.6). The few statements run on every message or page are written
once as SQL from the models' table and column names (chat.writes, chat.selectors); a
`RowLoader` gives their rows what the ORM would have applied to each value on loading:
SQLite's dates, JSON.
"""

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections

Result = TypeVar("Result")


class RowLoader:
    """Converts rows whose columns are `fields`, in order, as the ORM converts on loading."""

    def __init__(self, fields: Sequence[Any]) -> None:
        self._fields = list(fields)
        self._plans: dict[str, list[tuple[int, Any, list[Any]]]] = {}

    def __call__(self, row: Sequence[Any]) -> Sequence[Any]:
        return self.rows([row])[0]

    def rows(self, rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
        """Each of `rows`, converted. The plan is looked up once: reaching Django's connection
        goes through asgiref's context-local storage, about as costly as converting a row."""
        db = connections[DEFAULT_DB_ALIAS]  # what `connection` stands for, reached once
        vendor = db.vendor
        plan = self._plans.get(vendor)
        if plan is None:
            plan = self._plans[vendor] = self._plan()
        if not plan:
            return rows  # nothing to convert (most columns on PostgreSQL)
        converted = []
        for row in rows:
            out = list(row)
            for index, column, converters in plan:
                for converter in converters:
                    out[index] = converter(out[index], column, db)
            converted.append(out)
        return converted

    def _plan(self) -> list[tuple[int, Any, list[Any]]]:
        """(index, column expression, converters) of the fields the ORM converts."""
        plan = []
        for index, field in enumerate(self._fields):
            column = field.get_col(field.model._meta.db_table)
            converters = connection.ops.get_db_converters(column) + field.get_db_converters(
                connection
            )
            if converters:
                plan.append((index, column, converters))
        return plan


def placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


@dataclass(frozen=True)
class Statement:
    """One SQL statement and its parameters, to be run by whichever connection runs the steps
    (Django's on a thread, or an asyncio psycopg connection on the event loop: chat.store)."""

    sql: str
    params: Sequence[Any]
    #: False for a write whose outcome the steps do not read (they get None back at once): the
    #: loop's runner sends such statements with the next one, or with the COMMIT (chat.store).
    returns_rows: bool = True
    #: Writes run right after this statement, whose outcome the steps do not read (each with
    #: `returns_rows=False`): they may depend on what this one wrote, not on its rows. The rows
    #: sent back are this statement's.
    then: tuple["Statement", ...] = ()
    #: No statement follows: the steps end once they have this one's rows. The loop's runner
    #: then sends the COMMIT in the same round trip.
    last: bool = False

    def __post_init__(self) -> None:
        if any(write.returns_rows or write.then for write in self.then):
            raise ValueError("`then` takes writes whose outcome is not read")


#: The rows a statement returned (None for one that returns none).
Rows = list[tuple[Any, ...]] | None


class StepsWentOn(RuntimeError):
    """The steps yielded a statement after one marked `last` (a bug in the steps)."""

    def __init__(self, statement: Statement) -> None:
        super().__init__(f"a statement after the last one: {statement.sql[:80]}")


def run_steps(steps: Generator[Statement, Rows, Result]) -> Result:
    """Run the statements `steps` yields on Django's connection, sending each one's rows back;
    returns what `steps` returns."""
    with connection.cursor() as cursor:
        try:
            statement = next(steps)
            while True:
                cursor.execute(statement.sql, statement.params)
                rows = cursor.fetchall() if cursor.description is not None else None
                for write in statement.then:
                    cursor.execute(write.sql, write.params)
                last = statement.last
                statement = steps.send(rows)
                if last:
                    raise StepsWentOn(statement)
        except StopIteration as done:
            return done.value
