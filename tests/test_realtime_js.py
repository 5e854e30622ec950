"""The official JavaScript client (socket.io-client v4, from npm, run by node),
connected as the original's front end connects, hears the original's messages."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import make_attendee, make_event, register
from tests.support.live_server import LiveServer
from tests.support.paths import ROOT
from tests.support.sockets import WAIT

NODE_DIR = ROOT / "var" / "node"
CLIENT = "socket.io-client@^4"
LISTEN = Path(__file__).parent / "js" / "listen.cjs"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """socket.io-client v4 installed from npm into ./var/node (once per checkout)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run the official socket.io JavaScript client")
    modules = NODE_DIR / "node_modules"
    if not (modules / "socket.io-client" / "package.json").exists():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", CLIENT],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return modules


@pytest.fixture
def server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    live = LiveServer(database_url, redis_url)
    yield live
    live.stop()


class NodeListener:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def next_line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), WAIT)
        assert line, "the node client exited"
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    async def next_message(self) -> tuple[str, list[Any]]:
        line = await self.next_line()
        assert line["type"] == "message", line
        return line["event"], line["args"]


@pytest.fixture
async def js_client(node_modules: Path, server: LiveServer) -> AsyncIterator[NodeListener]:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(LISTEN),
        server.base,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_PATH": str(node_modules)},
    )
    listener = NodeListener(process)
    try:
        hello = await listener.next_line()
        assert hello["type"] == "connected", hello
        assert hello["version"].startswith("4."), hello
        yield listener
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), WAIT)
        except TimeoutError:
            process.kill()
            await process.wait()


async def test_the_javascript_client_hears_new_event_and_event_availability(
    js_client: NodeListener, server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=f"{server.base}/api/v1", timeout=15) as http:
        event = await make_event(http, name="Node meetup", maxAttendees=2)
        person = await make_attendee(http)
        assert (await register(http, event["id"], person["id"])).status_code == 201

    heard = [await js_client.next_message() for _ in range(4)]
    assert heard == [
        ("new-event", ["New event has been organized: Node meetup"]),
        (
            "event.created",
            [
                {
                    "eventId": event["id"],
                    "name": "Node meetup",
                    "date": event["date"],
                    "availableSeats": 2,
                    "maxAttendees": 2,
                }
            ],
        ),
        (
            "event-availability",
            ["Heads up! Seat is going to fill up for: Node meetup. Only 1 is remaining"],
        ),
        (
            "event.availability",
            [
                {
                    "eventId": event["id"],
                    "name": "Node meetup",
                    "date": event["date"],
                    "availableSeats": 1,
                    "maxAttendees": 2,
                }
            ],
        ),
    ]
