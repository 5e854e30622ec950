"""uvicorn's httptools protocol, with the writes of one event-loop turn sent together.

uvicorn writes a response's head and its body with two `transport.write` calls, and
uvloop sends each at once: two `send` syscalls per answer. On a cached read (one Redis
round trip and the bytes) those syscalls were the largest single cost left (py-spy:
a quarter of the server's CPU in `RequestResponseCycle.send`). Here a connection's
writes are held until the end of the loop turn and sent as one: the head and body of
an answer, and the answers of pipelined requests.

`serve` passes this class as uvicorn's `http`; a WebSocket upgrade hands the plain
transport on (after sending anything held), so Socket.IO is untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# What `uvicorn.run(http=…)` is given (a string, so that worker processes import it).
HTTP_PROTOCOL = "eventms.http.protocol:CorkedHttpToolsProtocol"


class CorkedTransport:
    """A transport whose writes wait for the end of the loop turn (see above)."""

    __slots__ = ("_held", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)

    def flush(self) -> None:
        if not self._held:
            return
        data = b"".join(self._held)
        self._held.clear()
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        # Reading side, flow control, extra info, abort: the transport's own.
        return getattr(self.transport, name)


class CorkedHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        corked = CorkedTransport(transport, asyncio.get_running_loop())
        super().connection_made(corked)  # type: ignore[arg-type]

    def handle_websocket_upgrade(self) -> None:
        corked = self.transport
        if isinstance(corked, CorkedTransport):
            corked.flush()
            self.transport = corked.transport
        super().handle_websocket_upgrade()
