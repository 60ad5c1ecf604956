"""Sign-in and origin checks for the WebSocket handshake."""

from typing import Any

from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from travelsite.token_auth import auser_for_token


def token_from_headers(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key of an `Authorization: Token <key>` header, "" for a malformed one, else None."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, key = value.decode("latin1").strip().partition(" ")
            return key.strip() if scheme.lower() == "token" else ""
    return None


class TokenHeaderAuthMiddleware(BaseMiddleware):
    """Signs a socket in from `Authorization: Token <key>`; a bad token fails the handshake.

    Runs inside Channels' session AuthMiddleware so a token, when given, wins over a cookie.
    """

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        key = token_from_headers(scope.get("headers", []))
        if key is not None:
            user = await auser_for_token(key) if key else None
            scope = dict(
                scope, user=user or AnonymousUser(), token_rejected=user is None, auth_token=key
            )
        return await super().__call__(scope, receive, send)


class BrowserOriginValidator(OriginValidator):
    """Refuses handshakes whose Origin is not an allowed host.

    A handshake without an Origin header comes from a program, not a browser (browsers always
    send one), so it cannot be cross-site and is let through to authenticate by token.
    """

    def valid_origin(self, parsed_origin: Any) -> bool:
        if parsed_origin is None:
            return True
        return bool(super().valid_origin(parsed_origin))


def origin_validated(application: Any) -> Any:
    """Wrap `application` in the allowed-hosts origin check (same hosts as ALLOWED_HOSTS)."""
    return BrowserOriginValidator(application, list(settings.ALLOWED_HOSTS))
