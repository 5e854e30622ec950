"""Rate limiting: one budget per client shared by every instance, 429 in the error
envelope, X-Forwarded-For only from trusted proxies, probes exempt, fail open."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
import pytest

from eventms.app import create_app
from eventms.config import Settings
from eventms.loopback import free_port
from tests.support.asgi import RunningApp, running

WINDOW_MS = 3_600_000  # one hour: a test never straddles two windows (see below)


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[Callable[..., Awaitable[RunningApp]]]:
    """Apps with a low budget; all made in one test share the Redis (and so the budget)."""
    # Windows are aligned to the clock: start well inside one.
    into_window = (time.time() * 1000) % WINDOW_MS
    if into_window > WINDOW_MS - 10_000:
        await asyncio.sleep((WINDOW_MS - into_window) / 1000 + 0.1)
    async with AsyncExitStack() as stack:

        async def make(**changes: object) -> RunningApp:
            update = {
                "rate_limiter_max_try": 3,
                "rate_limiter_time_to_leave": WINDOW_MS,
                **changes,
            }
            app = create_app(settings.model_copy(update=update))
            return await stack.enter_async_context(running(app))

        yield make


def http(app: RunningApp, peer: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_over_the_limit_is_429_with_headers(limited):
    app = await limited()
    async with http(app) as client:
        remaining = []
        for _ in range(3):
            response = await client.get("/api/v1/event")
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "3"
            remaining.append(response.headers["x-ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]
        refused = await client.get("/api/v1/event")
        assert refused.status_code == 429
        body = refused.json()
        assert body["statusCode"] == 429
        assert body["error"] == "Too Many Requests"
        assert body["message"].startswith("Too many requests")
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert 1 <= int(refused.headers["retry-after"]) <= WINDOW_MS / 1000
        assert int(refused.headers["x-ratelimit-reset"]) > time.time()
        # Probes and docs are not counted.
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/ready")).status_code == 200
        assert (await client.get("/api-docs-json")).status_code == 200
        # Another client has its own budget.
        async with http(app, peer="198.51.100.9") as other:
            assert (await other.get("/api/v1/event")).status_code == 200


async def test_two_instances_share_one_budget(limited):
    first, second = await limited(), await limited()
    async with http(first) as a, http(second) as b:
        assert (await a.get("/api/v1/event")).status_code == 200
        assert (await b.get("/api/v1/event")).status_code == 200
        assert (await a.get("/api/v1/attendee")).headers["x-ratelimit-remaining"] == "0"
        assert (await b.get("/api/v1/event")).status_code == 429
        assert (await a.get("/api/v1/event")).status_code == 429


async def test_forwarded_for_counts_only_from_trusted_proxies(limited):
    app = await limited(trusted_proxies=["10.0.0.0/8"])

    async def status(peer: str, forwarded: str) -> int:
        async with http(app, peer=peer) as client:
            headers = {"X-Forwarded-For": forwarded}
            return (await client.get("/api/v1/event", headers=headers)).status_code

    # Behind our proxy, each forwarded client has its own budget.
    for client in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"):
        assert await status("10.1.1.1", client) == 200
    # The right-most untrusted hop is the client, whatever it put before.
    for spoofed in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
        assert await status("10.1.1.1", f"{spoofed}, 192.0.2.9, 10.2.2.2") == 200
    assert await status("10.1.1.1", "4.4.4.4, 192.0.2.9") == 429
    # From anyone else the header is ignored: one budget for the peer.
    for forwarded in ("5.5.5.5", "6.6.6.6", "7.7.7.7"):
        assert await status("198.51.100.20", forwarded) == 200
    assert await status("198.51.100.20", "8.8.8.8") == 429


async def test_redis_down_lets_requests_through_and_logs_once(limited, caplog):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = await limited(redis_url=nowhere, rate_limiter_max_try=1)
    caplog.set_level(logging.WARNING, logger="eventms.ratelimit")
    async with http(app) as client:
        for _ in range(5):
            response = await client.get("/api/v1/event")
            assert response.status_code == 200
            assert "x-ratelimit-limit" not in response.headers
    warnings = [r for r in caplog.records if r.name == "eventms.ratelimit"]
    assert len(warnings) == 1
