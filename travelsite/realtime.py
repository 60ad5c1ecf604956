"""The one place that talks to the channel layer.

Services decide *what* happened and *who* should hear of it; this module encodes the event once
and hands it to the channel layer for each group, after the surrounding transaction commits (so
no socket ever hears of a row that was rolled back, and nothing is announced before it is
readable). Consumers only forward the pre-encoded text to their socket.
"""

import json
import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

logger = logging.getLogger(__name__)

#: The channel-layer message type every socket consumer handles (`realtime_event`).
EVENT_TYPE = "realtime.event"


def user_group(user_id: int) -> str:
    """Every socket of one user, on every process."""
    return f"user.{user_id}"


def room_group(room_id: int) -> str:
    """Every socket that joined one chat room."""
    return f"room.{room_id}"


def encode(event: dict[str, Any]) -> str:
    return json.dumps(event, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def layer_message(event: dict[str, Any], **meta: Any) -> dict[str, Any]:
    """The channel-layer message carrying `event`, encoded once for every recipient."""
    return {"type": EVENT_TYPE, "text": encode(event), **meta}


async def asend(groups: Iterable[str], event: dict[str, Any], **meta: Any) -> None:
    """Send `event` to every socket in `groups` now (from async code)."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = layer_message(event, **meta)
    for group in dict.fromkeys(groups):
        try:
            await layer.group_send(group, message)
        except Exception:
            # Delivery is best effort: what was stored is recovered by clients with `sync`.
            logger.exception("group_send to %s failed", group)


def send(groups: Iterable[str], event: dict[str, Any], **meta: Any) -> None:
    """Send `event` to every socket in `groups` now (from sync code)."""
    async_to_sync(asend)(list(groups), event, **meta)


def send_on_commit(groups: Iterable[str], event: dict[str, Any], **meta: Any) -> None:
    """Send `event` once the current transaction commits (at once outside a transaction)."""
    group_list = list(groups)
    transaction.on_commit(lambda: send(group_list, event, **meta), robust=True)
