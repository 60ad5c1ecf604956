"""The `mark_notifications_read` frame handler's validation (the happy path: test_live.py)."""

import asyncio
from typing import Any

import pytest

from notifications.ws import HANDLERS, handle_mark_notifications_read
from travelsite.frames import FrameError


class NoSocket:
    """A socket whose user is never reached: invalid frames fail before any query."""

    channel_name = "test"
    joined_rooms: set[int] = set()

    @property
    def user(self) -> Any:
        raise AssertionError("an invalid frame must not reach the service")

    async def send_event(self, event: dict[str, Any]) -> None:
        raise AssertionError("no answer expected")

    async def join_group(self, group: str) -> None: ...

    async def leave_group(self, group: str) -> None: ...


def test_the_frame_type_is_registered() -> None:
    assert HANDLERS["mark_notifications_read"] is handle_mark_notifications_read


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"all": False},
        {"all": "true"},
        {"all": 1},
        {"ids": []},
        {"ids": "1"},
        {"ids": [0]},
        {"ids": [-1]},
        {"ids": [1.5]},
        {"ids": [True]},
        {"ids": ["1"]},
        {"ids": [2**63]},
        {"ids": list(range(1, 1002))},
        {"ids": [1], "all": True},
    ],
)
def test_bad_frames_are_invalid(fields: dict[str, Any]) -> None:
    frame = {"type": "mark_notifications_read", **fields}
    with pytest.raises(FrameError) as error:
        asyncio.run(handle_mark_notifications_read(NoSocket(), frame))  # type: ignore[arg-type]
    assert error.value.code == "invalid"
    assert error.value.ref == "mark_notifications_read"
