"""Check-in races through live servers: scans of one ticket at many doors, on two
instances sharing one database, let it in exactly once; the event's room hears it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import make_attendee, make_event, register
from tests.support.live_server import LiveServer
from tests.support.sockets import Listener

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def doors(database_url: str, redis_url: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    first, second = LiveServer(database_url, redis_url), LiveServer(database_url, redis_url)
    yield first, second
    first.stop()
    second.stop()


def _client(base: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=f"{base}/api/v1", limits=limits, timeout=60)


async def test_20_racing_scans_on_two_instances_let_one_in(doors, db):
    first, second = doors
    async with _client(first.base) as one, _client(second.base) as other:
        event = await make_event(one, maxAttendees=5)
        person = await make_attendee(one)
        ticket = (await register(one, event["id"], person["id"])).json()["result"]
        listener = await Listener().connect(second.base)
        try:
            ack = await listener.ask("subscribe", {"eventId": event["id"]})
            assert ack["ok"] is True, ack
            body = {"code": ticket["ticketCode"], "eventId": event["id"]}
            scans = [(one if i % 2 else other).post("/checkin", json=body) for i in range(20)]
            answers = await asyncio.gather(*scans)
            heard = await listener.wait_for("checkin.created")
        finally:
            await listener.close()
        statuses = Counter(a.status_code for a in answers)
        assert statuses == {201: 1, 409: 19}, statuses
        [winner] = [a.json()["result"] for a in answers if a.status_code == 201]
        refusals = {a.json()["message"] for a in answers if a.status_code == 409}
        assert refusals == {f"Already checked in at {winner['checkedInAt']}"}
        assert heard == {
            "eventId": event["id"],
            "registrationId": ticket["id"],
            "checkedInAt": winner["checkedInAt"],
            "checkedInCount": 1,
        }
        for http in (one, other):
            shown = (await http.get(f"/event/{event['id']}")).json()["result"]
            assert shown["checkedInCount"] == 1
    rows = db.execute(
        "SELECT count(*), (SELECT checked_in_count FROM events WHERE id = %s) FROM checkins",
        (event["id"],),
    ).fetchone()
    assert rows == (1, 1)


async def test_racing_retries_of_one_scan_all_get_its_answer(doors):
    first, second = doors
    async with _client(first.base) as one, _client(second.base) as other:
        event = await make_event(one)
        ticket = (await register(one, event["id"], (await make_attendee(one))["id"])).json()
        body = {"code": ticket["result"]["ticketCode"], "nonce": "door-2/scan-41"}
        answers = await asyncio.gather(
            *[(one if i % 2 else other).post("/checkin", json=body) for i in range(10)]
        )
    assert {a.status_code for a in answers} == {201}
    assert len({a.content for a in answers}) == 1
