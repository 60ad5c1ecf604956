"""Pre-built WebSocket frames and the channel layer's direct receivers."""

import asyncio
from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from travelsite.channel_layer import ResilientPubSubChannelLayer
from travelsite.transport import text_frame


def parse(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        while True:
            next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frames_parse_as_one_final_unmasked_text_frame(length: int) -> None:
    text = ("é" * length)[:length]
    frame = parse(text_frame(text))
    assert frame.opcode is Opcode.TEXT
    assert frame.fin is True
    assert bytes(frame.data).decode() == text


@pytest.mark.services
@pytest.mark.asyncio
async def test_group_messages_go_to_direct_receivers_decoded_once_and_in_order(
    settings: Any,
) -> None:
    layer = ResilientPubSubChannelLayer(hosts=[settings.REDIS_URL], prefix="test-direct")
    taken: list[tuple[str, dict[str, Any]]] = []
    try:
        direct = await layer.new_channel()
        declining = await layer.new_channel()
        queued = await layer.new_channel()
        loop_layer = layer._get_layer()

        def take(message: dict[str, Any]) -> bool:
            taken.append((direct, message))
            return True

        loop_layer.set_direct_receiver(direct, take)
        loop_layer.set_direct_receiver(declining, lambda message: False)
        for channel in (direct, declining, queued):
            await layer.group_add("g", channel)

        for n in range(3):
            await layer.group_send("g", {"type": "realtime.event", "text": str(n)})

        for channel in (declining, queued):  # declined or without a receiver: queued as before
            got = [(await layer.receive(channel))["text"] for _ in range(3)]
            assert got == ["0", "1", "2"]
        assert [m["text"] for _, m in taken] == ["0", "1", "2"]
    finally:
        await layer.flush()


@pytest.mark.services
@pytest.mark.asyncio
async def test_group_messages_reach_own_members_at_once_and_once_and_others_through_redis(
    settings: Any,
) -> None:
    """Two layers stand for two processes: each delivers its own sends to its own members when
    sent (not again when Redis echoes them back), and the other's through Redis."""
    here = ResilientPubSubChannelLayer(hosts=[settings.REDIS_URL], prefix="test-local-first")
    there = ResilientPubSubChannelLayer(hosts=[settings.REDIS_URL], prefix="test-local-first")
    taken: dict[str, list[str]] = {"here": [], "there": []}
    try:
        for name, layer in (("here", here), ("there", there)):
            channel = await layer.new_channel()

            def take(message: dict[str, Any], into: list[str] = taken[name]) -> bool:
                into.append(message["text"])
                return True

            layer._get_layer().set_direct_receiver(channel, take)
            await layer.group_add("g", channel)

        send = asyncio.ensure_future(
            here.group_send("g", {"type": "realtime.event", "text": "from here"})
        )
        await asyncio.sleep(0)  # the send has started: local members have it already
        assert taken["here"] == ["from here"]
        await send
        await there.group_send("g", {"type": "realtime.event", "text": "from there"})

        for _ in range(50):  # Redis delivers the other way round
            if len(taken["here"]) == 2 and len(taken["there"]) == 2:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # and would have echoed a second copy by now
        assert taken["here"] == ["from here", "from there"]
        assert sorted(taken["there"]) == ["from here", "from there"]  # each once
    finally:
        await here.flush()
        await there.flush()
