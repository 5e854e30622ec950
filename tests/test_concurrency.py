"""Capacity and duplicates under concurrency, through a live `eventms serve` over HTTP.

Requests really race: one process (or two) of uvicorn, a pool of PostgreSQL
connections, and up to 200 client connections at once. The database must end
consistent: never more registrations than seats, `registered_count` equal to the rows.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.api import attendees, live_client, make_attendee, make_event, register_all
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow

FULL = "Sorry the event is full"
ALREADY = "You are already registered for this event"


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    live = LiveServer(database_url, redis_url)
    yield live
    live.stop()


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with await live_client(server.base) as client:
        yield client


def seats(db, event_id: str) -> tuple[int, int, int]:
    """(rows in registrations, registered_count, max_attendees) of the event."""
    row = db.execute(
        "SELECT (SELECT count(*) FROM registrations WHERE event_id = e.id),"
        " e.registered_count, e.max_attendees FROM events e WHERE e.id = %s",
        (event_id,),
    ).fetchone()
    return row[0], row[1], row[2]


def quiet_refusals(live: LiveServer) -> None:
    """Refused registrations are answered, not logged: a refusal met while the
    registration's pipeline is still being sent must not leave psycopg a warning."""
    assert "error ignored" not in live.output()


async def _race_for_ten_seats(http: httpx.AsyncClient, db, live: LiveServer) -> None:
    event = await make_event(http, maxAttendees=10)
    people = await attendees(http, 200)
    responses = await register_all(http, event["id"], people)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 10, 409: 190}, statuses
    assert {r.json()["message"] for r in responses if r.status_code == 409} == {FULL}
    winners = {r.json()["result"]["attendeeId"] for r in responses if r.status_code == 201}
    listed = (await http.get(f"/event/{event['id']}")).json()["result"]
    assert listed["registeredCount"] == 10
    assert listed["availableSeats"] == 0
    assert {r["attendee"]["id"] for r in listed["eventAttendees"]} == winners
    assert seats(db, event["id"]) == (10, 10, 10)
    quiet_refusals(live)


async def test_200_registrations_for_10_seats(http, db, server):
    await _race_for_ten_seats(http, db, server)


async def test_200_registrations_for_10_seats_on_two_workers(database_url, redis_url, db):
    live = LiveServer(database_url, redis_url, workers=2)
    try:
        async with await live_client(live.base) as http:
            await _race_for_ten_seats(http, db, live)
    finally:
        live.stop()


async def test_50_identical_registrations_give_one_seat(http, db, server):
    event = await make_event(http, maxAttendees=100)
    person = await make_attendee(http)
    responses = await register_all(http, event["id"], [person] * 50)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 49}, statuses
    assert {r.json()["message"] for r in responses if r.status_code == 409} == {ALREADY}
    assert seats(db, event["id"]) == (1, 1, 100)
    quiet_refusals(server)


async def test_cancel_and_register_on_a_full_event_never_overbook(http, db):
    capacity = 5
    event = await make_event(http, maxAttendees=capacity)
    holders = await attendees(http, capacity)
    booked = await register_all(http, event["id"], holders)
    assert all(r.status_code == 201 for r in booked)
    queue = await attendees(http, 30 + capacity)
    held = [r.json()["result"]["id"] for r in booked]
    for round_ in range(3):
        # Cancel everything held while 10 newcomers race for the seats being freed.
        newcomers = queue[round_ * 10 : (round_ + 1) * 10]
        cancels = [http.delete(f"/registration/{rid}") for rid in held]
        joins = [
            http.post("/registration", json={"eventId": event["id"], "attendeeId": p["id"]})
            for p in newcomers
        ]
        mixed = cancels + joins
        order = list(range(len(mixed)))
        random.shuffle(order)
        answers = await asyncio.gather(*(mixed[i] for i in order))
        by_index = dict(zip(order, answers, strict=True))
        cancel_answers = [by_index[i] for i in range(len(cancels))]
        join_answers = [by_index[i] for i in range(len(cancels), len(mixed))]
        assert all(r.status_code == 200 for r in cancel_answers)
        assert {r.status_code for r in join_answers} <= {201, 409}
        assert {r.json()["message"] for r in join_answers if r.status_code == 409} <= {FULL}
        held = [r.json()["result"]["id"] for r in join_answers if r.status_code == 201]
        rows, counted, limit = seats(db, event["id"])
        assert rows == counted == len(held) <= limit == capacity
    # No seat leaked: exactly the seats left free can still be taken, one by one.
    late = [await register_all(http, event["id"], [p]) for p in queue[30:]]
    taken = sum(answer[0].status_code == 201 for answer in late)
    assert taken == capacity - len(held)
    assert seats(db, event["id"]) == (capacity, capacity, capacity)


async def test_double_cancel_gives_one_200(http, db):
    event = await make_event(http)
    person = await make_attendee(http)
    made = (await register_all(http, event["id"], [person]))[0].json()["result"]
    answers = await asyncio.gather(*(http.delete(f"/registration/{made['id']}") for _ in range(10)))
    assert Counter(r.status_code for r in answers) == {200: 1, 404: 9}
    assert seats(db, event["id"]) == (0, 0, 10)


async def test_lowering_capacity_while_registering_never_overbooks(http, db):
    event = await make_event(http, maxAttendees=40)
    people = await attendees(http, 40)
    registrations = [
        http.post("/registration", json={"eventId": event["id"], "attendeeId": p["id"]})
        for p in people
    ]
    shrinks = [
        http.patch(f"/event/{event['id']}", json={"maxAttendees": n}) for n in (30, 20, 10, 5, 15)
    ]
    mixed = registrations + shrinks
    order = list(range(len(mixed)))
    random.shuffle(order)
    answers = await asyncio.gather(*(mixed[i] for i in order))
    by_index = dict(zip(order, answers, strict=True))
    reg_answers = [by_index[i] for i in range(len(registrations))]
    shrink_answers = [by_index[i] for i in range(len(registrations), len(mixed))]
    assert {r.status_code for r in reg_answers} <= {201, 409}
    assert {r.status_code for r in shrink_answers} <= {200, 409}
    for answer in shrink_answers:
        if answer.status_code == 409:
            assert answer.json()["message"].startswith("Event already has ")
        else:
            # Accepted only when the seats taken at that moment fitted.
            result = answer.json()["result"]
            assert result["registeredCount"] <= result["maxAttendees"]
    rows, counted, limit = seats(db, event["id"])
    assert rows == counted == sum(r.status_code == 201 for r in reg_answers)
    assert rows <= limit
