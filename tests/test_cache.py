"""The cache: hits cost no database connection, and every kind of write is visible to
the next read through the cache (each view is cached first, so a missed invalidation
would show as a stale answer)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event

from tests.support.api import cached, make_attendee, make_event, register, result


async def test_hit_returns_same_bytes_without_a_database_connection(app, client):
    event = await make_event(client)
    url = f"/event/{event['id']}"
    first = await client.get(url)
    checkouts: list[object] = []

    def count(*args: object) -> None:
        checkouts.append(args)

    pool = app.state["engine"].sync_engine.pool
    sa_event.listen(pool, "checkout", count)
    try:
        second = await client.get(url)
    finally:
        sa_event.remove(pool, "checkout", count)
    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["content-type"] == "application/json"
    assert app.state["cache"].engine.stats.hits == 1
    assert checkouts == []


async def test_any_spelling_of_an_id_hits_the_same_entry(app, client):
    event = await make_event(client)
    first = await client.get(f"/event/{event['id']}")
    for spelling in (event["id"].upper(), "{" + event["id"] + "}", event["id"].replace("-", "")):
        again = await client.get(f"/event/{spelling}")
        assert again.status_code == 200 and again.content == first.content
    assert app.state["cache"].engine.stats.hits == 3
    assert app.state["cache"].engine.stats.misses == 1


async def test_event_update_is_read_back(app, client):
    event = await make_event(client, name="Before", date="2030-02-01", maxAttendees=5)
    person = await make_attendee(client)
    registration = (await register(client, event["id"], person["id"])).json()["result"]
    urls = [
        f"/event/{event['id']}",
        "/event",
        "/event/date-range?from=2030-01-01&to=2030-12-31",
        f"/attendee/{person['id']}",
        f"/registration/{registration['id']}",
        "/registration",
    ]
    await cached(app, client, *urls)
    response = await client.patch(
        f"/event/{event['id']}", json={"name": "After", "maxAttendees": 3}
    )
    assert response.status_code == 200
    assert (await result(client, urls[0]))["name"] == "After"
    assert (await result(client, urls[1]))[0]["name"] == "After"
    assert (await result(client, urls[2]))[0]["name"] == "After"
    shown = (await result(client, urls[3]))["registrations"][0]["event"]
    assert (shown["name"], shown["availableSeats"]) == ("After", 2)
    assert (await result(client, urls[4]))["event"]["name"] == "After"
    assert (await result(client, urls[5]))[0]["event"]["name"] == "After"


async def test_event_create_and_delete_are_read_back(app, client):
    event = await make_event(client, date="2030-02-01")
    person = await make_attendee(client)
    registration = (await register(client, event["id"], person["id"])).json()["result"]
    ranged = "/event/date-range?from=2030-01-01&to=2030-12-31"
    await cached(
        app, client, "/event", ranged, f"/attendee/{person['id']}", "/registration",
        f"/event/{event['id']}", f"/registration/{registration['id']}",
    )  # fmt: skip
    other = await make_event(client, date="2030-03-01")
    assert [e["id"] for e in await result(client, "/event")] == [event["id"], other["id"]]
    assert len(await result(client, ranged)) == 2
    assert (await client.delete(f"/event/{event['id']}")).status_code == 200
    assert (await client.get(f"/event/{event['id']}")).status_code == 404
    assert (await client.get(f"/registration/{registration['id']}")).status_code == 404
    assert [e["id"] for e in await result(client, "/event")] == [other["id"]]
    assert [e["id"] for e in await result(client, ranged)] == [other["id"]]
    assert (await result(client, f"/attendee/{person['id']}"))["registrations"] == []
    assert await result(client, "/registration") == []


async def test_attendee_create_is_read_back_in_searches(app, client):
    await make_attendee(client, name="Ada Lovelace")
    await cached(app, client, "/attendee", "/attendee?name=ada")
    await make_attendee(client, name="Ada Byron")
    assert len(await result(client, "/attendee")) == 2
    assert len(await result(client, "/attendee?name=ada")) == 2


async def test_attendee_rename_is_read_back_everywhere_it_is_shown(app, client):
    event = await make_event(client)
    person = await make_attendee(client, name="Old Name")
    registration = (await register(client, event["id"], person["id"])).json()["result"]
    urls = [
        f"/event/{event['id']}",
        "/event",
        f"/attendee/{person['id']}",
        "/attendee?name=old",
        f"/registration/{registration['id']}",
        "/registration",
    ]
    await cached(app, client, *urls)
    response = await client.patch(f"/attendee/{person['id']}", json={"name": "New Name"})
    assert response.status_code == 200
    assert (await result(client, urls[0]))["eventAttendees"][0]["attendee"]["name"] == "New Name"
    assert (await result(client, urls[1]))[0]["eventAttendees"][0]["attendee"]["name"] == "New Name"
    assert (await result(client, urls[2]))["name"] == "New Name"
    assert await result(client, urls[3]) == []
    assert (await result(client, urls[4]))["attendee"]["name"] == "New Name"
    assert (await result(client, urls[5]))[0]["attendee"]["name"] == "New Name"


async def test_attendee_delete_is_read_back(app, client):
    event = await make_event(client, maxAttendees=5)
    person = await make_attendee(client)
    registration = (await register(client, event["id"], person["id"])).json()["result"]
    urls = [f"/event/{event['id']}", f"/attendee/{person['id']}", "/attendee", "/registration"]
    await cached(app, client, *urls, f"/registration/{registration['id']}")
    assert (await client.delete(f"/attendee/{person['id']}")).status_code == 200
    shown = await result(client, urls[0])
    assert (shown["eventAttendees"], shown["availableSeats"]) == ([], 5)
    assert (await client.get(urls[1])).status_code == 404
    assert await result(client, urls[2]) == []
    assert await result(client, urls[3]) == []
    assert (await client.get(f"/registration/{registration['id']}")).status_code == 404


async def test_registration_and_cancel_are_read_back(app, client):
    event = await make_event(client, maxAttendees=5)
    first, second = await make_attendee(client), await make_attendee(client)
    taken = (await register(client, event["id"], first["id"])).json()["result"]
    urls = [
        f"/event/{event['id']}",
        "/event",
        f"/attendee/{first['id']}",
        f"/attendee/{second['id']}",
        f"/registration/{taken['id']}",
        "/registration",
    ]
    await cached(app, client, *urls)
    made = (await register(client, event["id"], second["id"])).json()["result"]
    assert (await result(client, urls[0]))["availableSeats"] == 3
    assert len((await result(client, urls[1]))[0]["eventAttendees"]) == 2
    # The first attendee's view shows the event's seats, which the second one took.
    assert (await result(client, urls[2]))["registrations"][0]["event"]["availableSeats"] == 3
    assert len((await result(client, urls[3]))["registrations"]) == 1
    assert (await result(client, urls[4]))["event"]["availableSeats"] == 3
    assert len(await result(client, urls[5])) == 2

    await cached(app, client, *urls, f"/registration/{made['id']}")
    assert (await client.delete(f"/registration/{made['id']}")).status_code == 200
    assert (await client.get(f"/registration/{made['id']}")).status_code == 404
    assert (await result(client, urls[0]))["availableSeats"] == 4
    assert (await result(client, urls[2]))["registrations"][0]["event"]["availableSeats"] == 4
    assert (await result(client, urls[3]))["registrations"] == []
    assert (await result(client, urls[4]))["event"]["availableSeats"] == 4
    assert len(await result(client, urls[5])) == 1


async def test_rejected_write_leaves_the_cache_serving(app, client):
    event = await make_event(client, maxAttendees=1)
    person = await make_attendee(client)
    await cached(app, client, f"/event/{event['id']}")
    assert (await register(client, event["id"], person["id"])).status_code == 201
    assert (await register(client, event["id"], person["id"])).status_code == 409
    assert (await result(client, f"/event/{event['id']}"))["availableSeats"] == 0


async def test_hit_is_answered_before_routing_and_counted(app, client):
    """A by-id hit never reaches the route: with the route's session made to fail,
    the cached body is still served; the hit shows in /metrics under its route."""
    from eventms.api.deps import _request_session

    event = await make_event(client)
    url = f"/event/{event['id']}"
    first = await client.get(url)  # a miss: loads and fills
    before = await scrape(client)

    async def no_database() -> None:
        raise AssertionError("the route ran")

    app.dependency_overrides[_request_session] = no_database
    try:
        second = await client.get(url)
        uncached = await client.get(f"/event/{uuid.uuid4()}")
    finally:
        app.dependency_overrides.clear()
    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["content-length"] == str(len(first.content))
    assert uncached.status_code == 500  # a miss does reach the (here failing) route
    another = await make_event(client)
    assert (await client.get(f"/event/{another['id']}")).status_code == 200  # one miss

    after = await scrape(client)
    hits = 'eventms_cache_hits_total{kind="event"}'
    misses = 'eventms_cache_misses_total{kind="event"}'
    route = 'method="GET",route="/api/v1/event/{event_id}",status="200"'
    served = "eventms_http_requests_total{" + route + "}"
    assert after[hits] == before.get(hits, 0) + 1
    assert after[misses] == before.get(misses, 0) + 1  # counted once, not once per look
    assert after[served] == before.get(served, 0) + 2


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    text = (await client.get("http://test/metrics")).text
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {name: float(value) for name, value in samples}


async def test_a_cached_read_is_one_redis_round_trip_rate_limit_included(
    settings, redis_url, client
):
    """The rate limit's count rides in the cache lookup's script: ten cached reads
    are ten EVALSHAs, each with the GET of its body sent in the same write, and
    nothing else from the client (INCR, GET, EXISTS and MGET are also the script's
    own calls, which Redis counts too), and still counted."""
    import redis as redis_sync

    event = await make_event(client)
    url = f"/event/{event['id']}"
    for _ in range(2):  # a miss that fills, then a hit
        assert (await client.get(url)).status_code == 200
    with redis_sync.Redis.from_url(redis_url) as server:
        server.config_resetstat()
        answers = [await client.get(url) for _ in range(10)]
        stats = server.info("commandstats")
    assert all(a.status_code == 200 for a in answers)
    remaining = [int(a.headers["x-ratelimit-remaining"]) for a in answers]
    assert remaining == sorted(remaining, reverse=True) and len(set(remaining)) == 10
    calls = {name: value["calls"] for name, value in stats.items()}
    calls.pop("cmdstat_config", None)
    script = {"cmdstat_incr": 10, "cmdstat_get": 10, "cmdstat_exists": 10, "cmdstat_mget": 10}
    client_calls = {"cmdstat_evalsha": 10, "cmdstat_get": 10}
    expected = {**script, **client_calls, "cmdstat_get": 20}
    assert calls == expected, calls


@pytest.mark.parametrize("host", ["multiplexed", "redis-py"])
async def test_a_body_is_kept_apart_from_its_tags_and_old_values_are_refilled(
    redis_url: str, host: str
) -> None:
    """Bodies live under a key of their own (read with the lookup, not through Lua),
    on either kind of connection; a value stored whole by an older version (tags, a
    newline and the body, under one key) is a miss, and is stored anew."""
    import redis.asyncio as redis_async

    from eventms.cache.engine import BODY, Rendered, TaggedCache
    from eventms.cache.multiplex import Multiplexed

    client = redis_async.Redis.from_url(redis_url)
    scripts: Any = Multiplexed(redis_url, timeout=2.0) if host == "multiplexed" else client
    engine = TaggedCache(scripts, 60, clock_key="t:clock", everything_tag="t:all")
    loads = 0

    async def render() -> Rendered:
        nonlocal loads
        loads += 1
        return Rendered(b'{"n":%d}' % loads, ["t:one"])

    try:
        await client.set("t:old", b"t:all=1 t:one=1\n" + b'{"old":true}')
        assert await engine.get("t:old", ["t:all"], render, "event") == b'{"n":1}'
        assert await engine.get("t:old", ["t:all"], render, "event") == b'{"n":1}'  # a hit
        assert await client.get("t:old" + BODY) == b'{"n":1}'
        assert b"\n" not in (await client.get("t:old") or b"")
        await engine.bump(["t:one"])
        assert await engine.get("t:old", ["t:all"], render, "event") == b'{"n":2}'
        assert loads == 2
    finally:
        await client.delete("t:old", "t:old" + BODY, "t:one", "t:all", "t:clock")
        if isinstance(scripts, Multiplexed):
            await scripts.aclose()
        await client.aclose()
