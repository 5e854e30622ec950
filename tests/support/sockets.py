"""A Socket.IO listener for the real-time tests.

Absence of a message is checked without timing: after the write that must not
broadcast, a write that does broadcast is made, and its message is awaited. One
server sends the messages of one connection in order, so anything the first
write had sent would have arrived before it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

WAIT = 15.0  # seconds before a missing message fails a test (never a timing assertion)


class Listener:
    """A python-socketio client that keeps every message it receives, in order."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[str, Any]] = []
        self._arrived = asyncio.Condition()

        @self.sio.on("*")
        async def keep(message: str, data: Any = None) -> None:
            async with self._arrived:
                self.received.append((message, data))
                self._arrived.notify_all()

    async def connect(self, base_url: str, transport: str = "websocket") -> Listener:
        await self.sio.connect(base_url, transports=[transport], wait_timeout=WAIT)
        return self

    async def close(self) -> None:
        if self.sio.transport() == "polling":
            # python-engineio's server leaves a closed client's pending long-poll open
            # until its ping timeout; a browser drops it, and so do we.
            for namespace in self.sio.namespaces:
                await self.sio._send_packet(
                    self.sio.packet_class(socketio.packet.DISCONNECT, namespace=namespace)
                )
            await self.sio.eio.disconnect(abort=True)
        else:
            await self.sio.disconnect()

    async def wait_for(self, message: str, predicate: Any = None) -> Any:
        """The payload of the first `message` received (matching `predicate`), waiting."""

        def found() -> Any:
            for name, data in self.received:
                if name == message and (predicate is None or predicate(data)):
                    return (name, data)
            return None

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(found), WAIT)
        return found()[1]

    def of(self, message: str) -> list[Any]:
        return [data for name, data in self.received if name == message]

    async def ask(self, message: str, *args: Any) -> Any:
        """Send `message` and return the server's acknowledgement."""
        data: Any = None if not args else args[0] if len(args) == 1 else tuple(args)
        return await self.sio.call(message, data, timeout=WAIT)
