"""Small builders for test data, through the HTTP API."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

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
