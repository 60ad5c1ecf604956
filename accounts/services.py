"""Writes about users' credentials: revoking tokens and signing sockets out."""

import hashlib

from django.contrib.auth.models import User
from django.db import transaction
from rest_framework.authtoken.models import Token

from travelsite import realtime


def credential_fingerprint(secret: str) -> str:
    """A short, non-reversible name for a session key or token, safe to put in events."""
    return hashlib.sha256(secret.encode()).hexdigest()[:24]


def session_sockets_close(*, user_id: int, session_key: str) -> None:
    """Close the user's sockets that were signed in by this browser session."""
    realtime.send(
        [realtime.user_group(user_id)],
        {"type": "signed_out", "reason": "session ended"},
        close_credential=credential_fingerprint(session_key),
    )


def token_revoke(*, user: User) -> bool:
    """Delete the user's API token: it stops working on REST and its open sockets close."""
    with transaction.atomic():
        token = Token.objects.filter(user=user).first()
        if token is None:
            return False
        fingerprint = credential_fingerprint(token.key)
        token.delete()
        realtime.send_on_commit(
            [realtime.user_group(user.pk)],
            {"type": "signed_out", "reason": "token revoked"},
            close_credential=fingerprint,
        )
    return True
