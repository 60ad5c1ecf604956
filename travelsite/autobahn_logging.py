"""autobahn's debug-log arguments, formatted only when a debug line is written.

autobahn builds the arguments of its debug log calls before its logger decides to drop them:
each WebSocket connection pretty-prints its 29 options (`pformat`, about 175 µs), and the
handshake names autobahn's methods and values in colour a dozen times (`hltype`, `hlval`:
`inspect` and `click.style`). Daphne logs autobahn above debug, so all of it was thrown away,
on the server's one thread: about a tenth of a connection's CPU, which a reconnect storm after
a deploy pays thousands of times over (docs/performance.md, eighteenth session).

`install_lazy_debug_args` replaces those three names in autobahn's WebSocket modules with
versions that return a `Formatted`: an object that formats itself, to the same text, when a log
line that shows it is written. Every use of the three there is a log argument, but for
`Timings.__str__`, which is given the real `pformat` back.

Installed by travelsite/asgi.py, in the daphne process only.
"""

from collections.abc import Callable
from typing import Any


class Formatted:
    """`format_value(value)`, computed when shown (str, repr or format) and not before."""

    __slots__ = ("_format_value", "_value")

    def __init__(self, format_value: Callable[[Any], str], value: Any) -> None:
        self._format_value = format_value
        self._value = value

    def __str__(self) -> str:
        return self._format_value(self._value)

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def lazily(format_value: Callable[[Any], str]) -> Callable[[Any], Formatted]:
    """`format_value`, deferred until its result is shown."""

    def deferred(value: Any) -> Formatted:
        return Formatted(format_value, value)

    deferred.__wrapped__ = format_value  # type: ignore[attr-defined]
    return deferred


def install_lazy_debug_args() -> None:
    import pprint

    from autobahn import util
    from autobahn.twisted import websocket as twisted_websocket
    from autobahn.websocket import protocol

    if getattr(protocol, "_lazy_debug_args", False):
        return
    for module in (protocol, twisted_websocket):
        module.hltype = lazily(util.hltype)  # type: ignore[attr-defined]
        module.hlval = lazily(util.hlval)  # type: ignore[attr-defined]
    protocol.pformat = lazily(pprint.pformat)  # type: ignore[assignment]

    def timings_text(self: Any) -> str:
        return pprint.pformat(self._timings)

    protocol.Timings.__str__ = timings_text  # type: ignore[method-assign]
    protocol._lazy_debug_args = True  # type: ignore[attr-defined]
