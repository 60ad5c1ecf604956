"""The baseline: a minimal `websockets` broadcast server speaking the chat frame subset.

No database, no channel layer, no auth: `join_room` adds the socket to an in-memory room,
`send_message` answers `ack` to the sender and broadcasts one `message` frame (encoded once,
`websockets.broadcast`) to every socket joined to the room. `authenticate` answers
`authenticated`; `ping` answers `pong`; anything else gets an `error`. The frames have the same
shape as the real server's (CONTRACT.md), so the load generator drives both alike.

    python bench/baseline_server.py --port 8765
"""

import argparse
import asyncio
import datetime
import json
import signal
from collections import defaultdict
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve

ROOMS: dict[int, set[ServerConnection]] = defaultdict(set)
STATE = {"next_id": 0}
LAST_IN_ROOM: dict[int, int | None] = {}


def encode(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def message_shape(room_id: int, text: str, client_id: Any) -> dict[str, Any]:
    STATE["next_id"] += 1
    return {
        "id": STATE["next_id"],
        "message": text,
        "roomId": room_id,
        "userId": 1,
        "clientId": client_id,
        "createdAt": datetime.datetime.now(datetime.UTC).isoformat(),
        "user": {"id": 1, "firstName": "Bench", "lastName": "User", "profileImage": None},
    }


async def handler(ws: ServerConnection) -> None:
    joined: set[int] = set()
    try:
        async for raw in ws:
            try:
                frame = json.loads(raw)
                kind = frame["type"]
            except (ValueError, KeyError, TypeError):
                await ws.send(encode({"type": "error", "code": "invalid", "detail": "bad frame"}))
                continue
            if kind == "send_message":
                room_id = int(frame["roomId"])
                shape = message_shape(room_id, str(frame.get("message", "")), frame.get("clientId"))
                await ws.send(
                    encode({"type": "ack", "clientId": shape["clientId"], "message": shape})
                )
                prev = LAST_IN_ROOM.get(room_id)
                LAST_IN_ROOM[room_id] = shape["id"]
                broadcast(
                    ROOMS[room_id], encode({"type": "message", "message": shape, "prevId": prev})
                )
            elif kind == "join_room":
                room_id = int(frame.get("roomId") or 0)
                ROOMS[room_id].add(ws)
                joined.add(room_id)
                room = {"id": room_id, "name": frame.get("name") or f"room {room_id}"}
                await ws.send(
                    encode({"type": "room_joined", "room": room, "messages": [], "hasMore": False})
                )
            elif kind == "leave_room":
                room_id = int(frame.get("roomId") or 0)
                ROOMS[room_id].discard(ws)
                joined.discard(room_id)
                await ws.send(encode({"type": "room_left", "roomId": room_id}))
            elif kind == "authenticate":
                user = {"id": 1, "firstName": "Bench", "lastName": "User"}
                await ws.send(encode({"type": "authenticated", "user": user}))
            elif kind == "ping":
                await ws.send(encode({"type": "pong"}))
            else:
                await ws.send(encode({"type": "error", "code": "unknown_type", "ref": kind}))
    finally:
        for room_id in joined:
            ROOMS[room_id].discard(ws)


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # The same limits a browser-facing server would have: no compression, 64 KiB frames.
    async with serve(handler, host, port, compression=None, max_size=64 * 1024, backlog=4096):
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the benchmark stays on loopback")
    asyncio.run(main(args.host, args.port))
