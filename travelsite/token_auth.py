"""Sign-in by API token (`Authorization: Token <key>`), for REST calls and sockets alike."""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from travelsite import sql
from travelsite.batching import Coalescer


def user_for_token(key: str) -> User | None:
    """The active user owning API token `key`, or None."""
    return users_for_tokens([key])[0]


def users_for_tokens(keys: Sequence[str]) -> list[User | None]:
    """`user_for_token` of each key, in order, from one query (each its own `User`)."""
    rows = _owner_rows(keys)
    users = [_user(row) if (row := rows.get(key)) is not None else None for key in keys]
    return [user if user is not None and user.is_active else None for user in users]


_sign_ins: Coalescer[str, User | None] = Coalescer(users_for_tokens)


async def auser_for_token(key: str) -> User | None:
    """`user_for_token` from async code: socket sign-ins that arrive together (a reconnect
    storm after a deploy) share one trip to the database thread and one query."""
    return await _sign_ins.submit(key)


def owner_of_token(key: str) -> User | None:
    """The user owning API token `key` (active or not), or None."""
    row = _owner_rows([key]).get(key)
    return _user(row) if row is not None else None


_USER_FIELDS = User._meta.concrete_fields
_USER_ATTNAMES = [field.attname for field in _USER_FIELDS]
_load_user_row = sql.RowLoader(_USER_FIELDS)
_TOKEN_KEY = Token._meta.pk.column
_OWNERS_OF_TOKENS = (
    f"SELECT t.{_TOKEN_KEY}, {', '.join(f'u.{field.column}' for field in _USER_FIELDS)}"  # noqa: S608
    f" FROM {Token._meta.db_table} t JOIN {User._meta.db_table} u"
    f" ON u.{User._meta.pk.column} = t.{Token._meta.get_field('user').column}"
    f" WHERE t.{_TOKEN_KEY} IN ({{keys}})"
)


def _owner_rows(keys: Sequence[str]) -> dict[str, Sequence[Any]]:
    """{key: its owner's row} for those of `keys` that exist: one plain query, as every API
    call and socket sign-in asks it (the queryset took 0.4 ms of Python to compile)."""
    unique = list(dict.fromkeys(keys))
    if not unique:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_OWNERS_OF_TOKENS.format(keys=sql.placeholders(len(unique))), unique)
        rows = cursor.fetchall()
    return {row[0]: row[1:] for row in rows}


def _user(row: Sequence[Any]) -> User:
    return User.from_db(connection.alias, _USER_ATTNAMES, _load_user_row(row))


class ApiTokenAuthentication(TokenAuthentication):
    """DRF's `Authorization: Token <key>` authentication (same answers and header), with the
    token looked up by `owner_of_token`."""

    def authenticate_credentials(self, key: str) -> tuple[User, str]:
        user = owner_of_token(key)
        if user is None:
            raise AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return user, key
