"""The cache under races and faults: a load overlapping a write, a burst of misses,
Redis stopped or frozen, and no Redis at all."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from sqlalchemy import event as sa_event

from eventms.app import create_app
from eventms.cache.engine import Rendered
from eventms.config import Settings
from eventms.embedded import EmbeddedRedis
from eventms.events import service
from eventms.events.views import EventOut
from eventms.http.envelope import one_body
from eventms.loopback import free_port
from tests.support.api import cached, make_attendee, make_event, register, result
from tests.support.asgi import RunningApp, running
from tests.support.databases import libpq
from tests.support.paths import ROOT


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_a_load_that_overlaps_a_write_is_not_stored(app, client):
    event = await make_event(client, name="Old")
    wanted = uuid.UUID(event["id"])

    async def render_then_write() -> Rendered:
        async with app.state["sessions"]() as session:
            old = await service.get_event(session, event_id=wanted)
            body = one_body(200, "Event found", EventOut.model_validate(old))
        # A write commits and is acknowledged while this reader still holds the old row.
        patched = await client.patch(f"/event/{event['id']}", json={"name": "New"})
        assert patched.status_code == 200
        return Rendered(body)

    answered = await app.state["cache"].one("event", wanted, render_then_write)
    assert b'"name":"Old"' in answered  # the racing reader answers what it read...
    # ...but does not store it: the next read shows the acknowledged write.
    assert (await result(client, f"/event/{event['id']}"))["name"] == "New"


async def test_concurrent_misses_on_one_key_make_one_load(app, client, database_url, db):
    event = await make_event(client)
    person = await make_attendee(client)
    assert (await register(client, event["id"], person["id"])).status_code == 201
    url = f"/event/{event['id']}"
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    engine = app.state["engine"].sync_engine
    sa_event.listen(engine, "before_cursor_execute", count)
    stats = app.state["cache"].engine.stats
    burst = 20
    # Hold the first load inside PostgreSQL until every request has missed.
    with psycopg.connect(libpq(database_url)) as locker:
        locker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        requests = [asyncio.create_task(client.get(url)) for _ in range(burst)]

        async def all_missed_and_load_waiting() -> bool:
            waiting = db.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()[0]
            return stats.lookups == burst and waiting == 1

        await eventually(all_missed_and_load_waiting)
        locker.commit()
    responses = await asyncio.gather(*requests)
    burst_statements = len(statements)
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert (stats.misses, stats.joined) == (1, burst - 1)

    # One load of this view, for reference: the same statements, once.
    app.state["redis"] and await app.state["redis"].flushdb()
    statements.clear()
    assert (await client.get(url)).status_code == 200
    sa_event.remove(engine, "before_cursor_execute", count)
    assert burst_statements == len(statements) > 0


@pytest.fixture
def own_redis() -> Iterator[tuple[Path, int]]:
    """A Redis server this test may stop, freeze and restart (same address)."""
    where = ROOT / "var" / f"test-redis-{os.getpid()}"
    yield where, free_port()
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
async def app_on(
    settings: Settings,
) -> AsyncIterator[Callable[[str | None], Awaitable[RunningApp]]]:
    """Apps (with their lifespan running) on a given Redis URL, or None for no Redis."""
    async with AsyncExitStack() as stack:

        async def make(url: str | None) -> RunningApp:
            made = create_app(settings.model_copy(update={"redis_url": url, "redis_host": None}))
            return await stack.enter_async_context(running(made))

        yield make


def http(app: RunningApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test/api/v1")


async def test_redis_stopped_then_back_with_old_data(own_redis, app_on):
    where, port = own_redis
    server = EmbeddedRedis(where, port=port)
    url = server.start()
    app = await app_on(url)
    async with http(app) as client:
        event = await make_event(client, name="Before")
        person = await make_attendee(client)
        made = (await register(client, event["id"], person["id"])).json()["result"]
        views = [f"/event/{event['id']}", f"/attendee/{person['id']}", "/event", "/registration"]
        await cached(app, client, *views)
        # A persistent Redis comes back with what it held before the outage.
        server.server.save()
        server.stop()

        for view in [*views, f"/registration/{made['id']}", "/attendee", "/event/date-range"]:
            assert (await client.get(view)).status_code == 200, view
        patched = await client.patch(f"/event/{event['id']}", json={"name": "During"})
        assert patched.status_code == 200
        assert (await result(client, views[0]))["name"] == "During"

        server = EmbeddedRedis(where, port=port)
        server.start()
        try:
            assert redis.Redis(port=port).dbsize() > 0  # the old entries are back
            stats = app.state["cache"].engine.stats
            hits = stats.hits

            async def fresh_and_cached_again() -> bool:
                shown = await result(client, views[0])
                assert shown["name"] == "During"  # never the value from before the outage
                assert (await result(client, views[2]))[0]["name"] == "During"
                return stats.hits >= hits + 2

            await eventually(fresh_and_cached_again)
        finally:
            server.stop()


async def test_redis_frozen_write_is_replayed_before_cached_reads(own_redis, app_on):
    where, port = own_redis
    server = EmbeddedRedis(where, port=port)
    url = server.start()
    app = await app_on(url)
    pid = server.server.pid
    try:
        async with http(app) as client:
            event = await make_event(client, name="Before")
            view = f"/event/{event['id']}"
            await cached(app, client, view)
            os.kill(pid, signal.SIGSTOP)  # Redis stops answering: every call times out
            try:
                patched = await client.patch(view, json={"name": "During"})
                assert patched.status_code == 200
                assert (await result(client, view))["name"] == "During"
            finally:
                os.kill(pid, signal.SIGCONT)
            # Redis still holds the entry from before, under tags the write never bumped.
            stats = app.state["cache"].engine.stats
            hits = stats.hits

            async def fresh_and_cached_again() -> bool:
                assert (await result(client, view))["name"] == "During"
                return stats.hits >= hits + 1

            await eventually(fresh_and_cached_again)
    finally:
        server.stop()


async def test_without_redis_the_api_answers_the_same(app_on, redis_url):
    cached_app, plain_app = await app_on(redis_url), await app_on(None)
    assert plain_app.state["redis"] is None
    async with http(cached_app) as client, http(plain_app) as plain:
        event = await make_event(plain, date="2030-02-01")
        person = await make_attendee(plain, name="Grace")
        made = (await register(plain, event["id"], person["id"])).json()["result"]
        views = [
            f"/event/{event['id']}",
            "/event",
            "/event/date-range?from=2030-01-01&to=2030-12-31",
            f"/attendee/{person['id']}",
            "/attendee?name=gra",
            f"/registration/{made['id']}",
            "/registration",
            f"/event/{uuid.uuid4()}",
        ]
        for view in views:
            for _ in range(2):  # a miss, then a hit
                with_cache, without = await client.get(view), await plain.get(view)
                assert with_cache.status_code == without.status_code
                assert with_cache.content == without.content
                assert "x-ratelimit-limit" not in without.headers
        # After a write (through the cached app), both still answer alike.
        await client.patch(f"/attendee/{person['id']}", json={"name": "Hopper"})
        for view in views[:7]:
            assert (await client.get(view)).content == (await plain.get(view)).content
