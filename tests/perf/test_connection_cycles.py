"""A closed WebSocket connection leaves nothing for the garbage collector (each is freed by
reference counting when it closes): checked on a real daphne server in a child process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: A daphne server with a minimal WebSocket application; 50 clients connect, exchange a frame
#: and close; then what the collector would have to free is counted.
PROBE = r"""
import collections, gc, json, sys, threading, time
gc.disable()
from daphne.server import Server
from twisted.internet import reactor
from websockets.sync.client import connect
from travelsite.connection_cycles import install_cycle_breakers

if sys.argv[1] == "with-breakers":
    install_cycle_breakers()

async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif event["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": event["text"]})
        else:
            return

server = Server(app, endpoints=["tcp:port=0:interface=127.0.0.1"], signal_handlers=False)
found = {}

def count_garbage():
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector frees is kept, to be counted
    gc.collect()
    kinds = collections.Counter(type(o).__name__ for o in gc.garbage)
    found.update({k: kinds[k] for k in ("WebSocketProtocol", "WebRequest", "HTTPChannel")})
    reactor.stop()

def clients():
    host, port = server.listening_addresses[0]
    gc.collect()  # start from nothing
    for _ in range(50):
        with connect(f"ws://{host}:{port}/") as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "hi"
    time.sleep(2.5)  # daphne forgets closed connections once a second
    reactor.callFromThread(count_garbage)

server.ready_callable = lambda: reactor.callLater(0.2, threading.Thread(target=clients).start)
server.run()
print(json.dumps(found))
"""


def garbage_left(mode: str) -> dict[str, int]:
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "travelsite.settings"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, int] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("mode", ["with-breakers", "as-daphne-ships"])
def test_closed_connections_leave_no_cycles(mode: str) -> None:
    found = garbage_left(mode)
    if mode == "with-breakers":
        assert found == {"WebSocketProtocol": 0, "WebRequest": 0, "HTTPChannel": 0}
    else:
        # The probe sees what daphne leaves without the breakers: one of each per connection.
        assert found["WebSocketProtocol"] >= 50 and found["WebRequest"] >= 50
