"""autobahn's debug-log arguments are formatted only when shown, to the same text."""

import pprint
from typing import Any

from autobahn import util
from autobahn.twisted import websocket as twisted_websocket
from autobahn.websocket import protocol

from travelsite.autobahn_logging import install_lazy_debug_args, lazily


def test_a_deferred_value_is_not_formatted_until_shown() -> None:
    calls: list[Any] = []

    def costly(value: Any) -> str:
        calls.append(value)
        return f"<{value}>"

    deferred = lazily(costly)(42)

    assert calls == []
    assert str(deferred) == "<42>" and f"{deferred}" == "<42>" and f"{deferred:>6}" == "  <42>"
    assert repr(deferred) == "<42>"
    assert calls == [42, 42, 42, 42]


def test_autobahns_debug_arguments_read_as_before_once_installed() -> None:
    install_lazy_debug_args()
    options = [("openHandshakeTimeout", 5, "WebSocketServerFactory")]
    method = protocol.WebSocketServerProtocol.processHandshake

    assert str(protocol.hltype(method)) == util.hltype(method)
    assert str(twisted_websocket.hlval(8080)) == util.hlval(8080)
    assert str(protocol.pformat(options)) == pprint.pformat(options)
    assert not isinstance(protocol.pformat(options), str)  # deferred, not formatted


def test_timings_still_read_as_text() -> None:
    install_lazy_debug_args()
    timings = protocol.Timings()
    timings.track("onOpen")

    assert str(timings) == pprint.pformat(timings._timings)
