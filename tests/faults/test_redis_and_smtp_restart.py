"""Redis and the SMTP server stopped and started under load: the cache and the rate
limit fail open and come back, /ready says Redis is down meanwhile; mail that could
not be handed over is retried and arrives once."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.faults.engines import OwnPostgres, OwnRedis
from tests.faults.load import CONCURRENCY, assert_survived, log_lines, mail_env, run_burst
from tests.support.live_server import LiveServer
from tests.support.metrics import sample, scrape
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.slow


async def test_serve_rides_out_a_redis_restart(own_pg: OwnPostgres, own_redis: OwnRedis, sink):
    server = LiveServer(
        own_pg.url,
        own_redis.url,
        env={"WORKER_IN_PROCESS": "true", "RATE_LIMITER_MAX_TRY": "100000", **mail_env(sink)},
    )
    try:
        during: list[httpx.Response] = []

        async def restart() -> None:
            await asyncio.to_thread(own_redis.stop)
            async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
                await asyncio.sleep(0.5)
                during.append(await http.get("/ready"))
                during.append(await http.get("/api/v1/event"))
            await asyncio.sleep(1.5)
            await asyncio.to_thread(own_redis.start)

        burst = await run_burst(server.base, seconds=8, fault_after=2.5, fault=restart)
        assert set(burst.statuses) <= {200, 201}, burst.statuses  # no 503 for want of Redis
        ready, listed = during
        assert ready.status_code == 503 and ready.json()["down"] == ["redis"]
        assert listed.status_code == 200 and "x-ratelimit-limit" not in listed.headers
        with own_pg.connect() as db:
            await assert_survived(burst, db, sink, server.base, in_flight=0)

        async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
            before = scrape((await http.get("/metrics")).text)
            event = (await http.get("/api/v1/event")).json()["result"][0]["id"]
            for _ in range(3):
                answer = await http.get(f"/api/v1/event/{event}")
            assert answer.headers["x-ratelimit-limit"] == "100000"  # counted again
            after = scrape((await http.get("/metrics")).text)
        hits = sample(after, "eventms_cache_hits_total", kind="event")
        assert hits >= sample(before, "eventms_cache_hits_total", kind="event") + 2  # cached again
        output = server.output()
        # Each part says once that Redis went and once that it is back (a restart may
        # flap: a pooled connection answering once more while the server shuts down).
        for logger in ("eventms.ratelimit", "eventms.cache", "eventms.realtime"):
            lines = log_lines(output, logger)
            went = [line for line in lines if "unavailable" in line]
            back = [line for line in lines if "back" in line or "available again" in line]
            assert 1 <= len(went) == len(back) <= 6 and len(lines) == 2 * len(went), lines
            assert lines.index(went[0]) < lines.index(back[0]), lines
        assert "Cannot publish to redis" not in output  # python-socketio's per-emit errors
    finally:
        server.stop()


async def test_serve_rides_out_an_smtp_restart(own_pg: OwnPostgres, redis_url, sink: SmtpSink):
    server = LiveServer(own_pg.url, redis_url, env={"WORKER_IN_PROCESS": "true", **mail_env(sink)})
    try:
        stopped_with = 0

        async def restart() -> None:
            nonlocal stopped_with
            await asyncio.to_thread(sink.stop)
            stopped_with = len(sink.messages)
            await asyncio.sleep(2)
            await asyncio.to_thread(sink.start)

        burst = await run_burst(server.base, seconds=8, fault_after=2.5, fault=restart)
        assert set(burst.statuses) <= {200, 201}, burst.statuses
        assert 0 < stopped_with < len(burst.registered)
        with own_pg.connect() as db:
            await assert_survived(burst, db, sink, server.base, in_flight=CONCURRENCY)
        assert "mail job" in server.output()  # the failed attempts were retried
    finally:
        server.stop()
