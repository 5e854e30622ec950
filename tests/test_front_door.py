"""The front door (`http.front`) answers a cached read exactly as the app's layers
would have: same status, headers (in order) and body, one count against the rate
limit, one access line; and passes everything else on, counted once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from eventms.app import EventmsAPI, create_app
from eventms.config import Settings
from eventms.http.activity import ACTIVITY
from eventms.http.front import FrontDoor
from tests.support.asgi import RunningApp, running

LIMIT = 8


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[RunningApp]:
    update = {"rate_limiter_max_try": LIMIT, "rate_limiter_time_to_leave": 3_600_000}
    async with running(create_app(settings.model_copy(update=update))) as app:
        yield app


class Watched(FrontDoor):
    """The app's door, telling which requests it answered itself."""

    def __init__(self, door: FrontDoor) -> None:
        super().__init__(door.limiter, door.keys, door.fast_path, door.exempt)
        self.answers: list[bool] = []

    async def answered(self, scope, send) -> bool:  # type: ignore[no-untyped-def]
        done = await super().answered(scope, send)
        if scope["type"] == "http":
            self.answers.append(done)
        return done


def api(app: RunningApp) -> EventmsAPI:
    assert isinstance(app.app, EventmsAPI)
    return app.app


def watch(app: RunningApp) -> Watched:
    door = api(app).front_door
    assert door is not None
    watched = api(app).front_door = Watched(door)
    return watched


def client_of(app: RunningApp, peer: tuple[str, int] = ("127.0.0.1", 123)) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=peer)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def comparable(answer: httpx.Response) -> list[tuple[bytes, bytes]]:
    """Its headers in order, with the values that differ between two requests blanked."""
    varying = {b"x-request-id", b"x-ratelimit-remaining"}
    return [(name, b"*" if name in varying else value) for name, value in answer.headers.raw]


async def make_event(http: httpx.AsyncClient) -> str:
    made = await http.post(
        "/api/v1/event", json={"name": "Door", "date": "2031-03-04", "maxAttendees": 5}
    )
    assert made.status_code == 201, made.text
    return f"/api/v1/event/{made.json()['result']['id']}"


async def test_a_cached_read_is_answered_as_the_layers_answer_it(limited: RunningApp) -> None:
    door = watch(limited)
    async with client_of(limited, peer=("203.0.113.9", 4000)) as http:
        path = await make_event(http)
        missed = await http.get(path)  # fills the cache, through the route
        hit = await http.get(path)
        assert door.answers[-2:] == [False, True]
        api(limited).front_door = None  # the same read, the long way
        layered = await http.get(path)
        api(limited).front_door = door
        again = await http.get(path, headers={"X-Request-ID": "trace-me.1"})
    for answer in (missed, hit, layered, again):
        assert answer.status_code == 200
        assert answer.content == hit.content
    assert comparable(hit) == comparable(layered) == comparable(again)
    assert sorted(comparable(missed)) == sorted(comparable(layered))  # the route's order
    # One count each, whichever way the request went (the POST counted too).
    remaining = [int(a.headers["x-ratelimit-remaining"]) for a in (missed, hit, layered, again)]
    assert remaining == [LIMIT - 2, LIMIT - 3, LIMIT - 4, LIMIT - 5]
    assert again.headers["x-request-id"] == "trace-me.1"
    assert len({a.headers["x-request-id"] for a in (missed, hit, layered)}) == 3


async def test_the_door_logs_and_counts_as_the_layers_do(
    limited: RunningApp, caplog: pytest.LogCaptureFixture
) -> None:
    door = watch(limited)
    async with client_of(limited) as http:
        path = await make_event(http)
        await http.get(path)
        with caplog.at_level(logging.INFO, logger="eventms.access"):
            hit = await http.get(path)
            api(limited).front_door = None
            layered = await http.get(path)
        metrics = (await http.get("/metrics")).text
    assert door.answers[-1] is True
    assert hit.status_code == layered.status_code == 200
    lines = [r for r in caplog.records if r.name == "eventms.access"]
    assert len(lines) == 2
    for record in lines:
        assert record.getMessage().startswith(f"GET {path} 200 ")
        assert record.__dict__["status"] == 200
        assert record.__dict__["path"] == path
    # Both counted under the route's template, not the path.
    line = 'eventms_http_requests_total{method="GET",route="/api/v1/event/{event_id}",status="200"}'
    assert line in metrics


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://front.example"}, {"Content-Length": "0"}],
    ids=["origin", "body"],
)
async def test_what_the_layers_would_change_goes_the_long_way(
    limited: RunningApp, headers: dict[str, str]
) -> None:
    door = watch(limited)
    async with client_of(limited) as http:
        path = await make_event(http)
        await http.get(path)
        answer = await http.get(path, headers=headers)
    assert answer.status_code == 200
    assert door.answers[-1] is False
    if "Origin" in headers:
        assert answer.headers["access-control-allow-origin"]


async def test_over_the_limit_is_refused_by_the_layers_counted_once(limited: RunningApp) -> None:
    door = watch(limited)
    async with client_of(limited) as http:
        path = await make_event(http)
        answers = [await http.get(path) for _ in range(LIMIT)]
    assert [a.status_code for a in answers] == [200] * (LIMIT - 1) + [429]
    assert door.answers[-LIMIT:] == [False] + [True] * (LIMIT - 2) + [False]
    refused = answers[-1]
    assert refused.json()["statusCode"] == 429
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["retry-after"]
    assert refused.headers["x-request-id"]


async def test_the_door_counts_the_requests_in_flight(limited: RunningApp) -> None:
    """What the in-process mail worker waits on (`http.activity`): every HTTP request
    while it is answered, whichever way, but not Socket.IO's long-polls."""
    door = api(limited).front_door
    assert door is not None
    seen: list[int] = []

    async def inner(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        seen.append(ACTIVITY.in_flight)

    async def nothing() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def ignore(message) -> None:  # type: ignore[no-untyped-def]
        pass

    before = ACTIVITY.in_flight
    for path in ("/api/v1/registration", "/socket.io/"):
        scope: dict[str, object] = {"type": "http", "method": "POST", "path": path, "headers": []}
        await door.serve(scope, nothing, ignore, inner)
    assert seen == [before + 1, before]
    assert ACTIVITY.in_flight == before
