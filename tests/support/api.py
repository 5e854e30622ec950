"""Builders and readers of test data, through the HTTP API."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx

from tests.support.asgi import RunningApp

_counter = itertools.count(1)


async def make_event(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    n = next(_counter)
    body = {
        "name": f"Event {n}",
        "date": "2030-01-15",
        "location": f"Hall {n}",
        "maxAttendees": 10,
        **fields,
    }
    response = await client.post("/event", json=body)
    assert response.status_code == 201, response.text
    return response.json()["result"]


async def make_attendee(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    n = next(_counter)
    body = {"name": f"Person {n}", "email": f"person{n}@example.com", **fields}
    response = await client.post("/attendee", json=body)
    assert response.status_code == 201, response.text
    return response.json()["result"]


async def register(client: httpx.AsyncClient, event_id: str, attendee_id: str) -> httpx.Response:
    return await client.post("/registration", json={"eventId": event_id, "attendeeId": attendee_id})


async def result(client: httpx.AsyncClient, url: str) -> Any:
    """The `result` of a GET that must answer 200."""
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return response.json()["result"]


async def cached(app: RunningApp, client: httpx.AsyncClient, *urls: str) -> None:
    """GET each url until it is served from the cache (and check that it is)."""
    stats = app.state["cache"].engine.stats
    for url in urls:
        assert (await client.get(url)).status_code == 200
        before = stats.hits
        assert (await client.get(url)).status_code == 200
        assert stats.hits == before + 1, f"{url} was not served from the cache"


async def live_client(base: str) -> httpx.AsyncClient:
    """A client for a live server's API, for racing requests."""
    # No keep-alive: a pooled connection that the server closes as idle just as it is
    # reused would fail the request (uvicorn closes idle connections after 5 s).
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=f"{base}/api/v1", limits=limits, timeout=60)


async def attendees(http: httpx.AsyncClient, n: int) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(make_attendee(http) for _ in range(n))))


async def register_all(
    http: httpx.AsyncClient, event_id: str, people: list[dict[str, Any]]
) -> list[httpx.Response]:
    return list(
        await asyncio.gather(
            *(
                http.post("/registration", json={"eventId": event_id, "attendeeId": p["id"]})
                for p in people
            )
        )
    )


VALID_EVENT = {"name": "Launch", "date": "2030-05-01", "location": "Dock 1", "maxAttendees": 5}
VALID_ATTENDEE = {"name": "Ada", "email": "ada@example.com"}


def counts(db) -> tuple[int, int, int]:
    row = db.execute(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM attendees),"
        " (SELECT count(*) FROM registrations)"
    ).fetchone()
    return row[0], row[1], row[2]


def assert_validation_error(response: httpx.Response, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["statusCode"] == 400
    assert body["message"] == "Validation Error"
    assert isinstance(body["error"], str) and body["error"]
    assert body["details"], body
    if field is not None:
        assert field in [d["field"] for d in body["details"]], body
    return body
