"""The waiting list under concurrency, through a live `eventms serve` over HTTP:
racing joins get distinct places, racing cancellations promote first come first
served, and after every commit no event has a free seat while someone waits."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.api import attendees, live_client, make_event, register_all
from tests.support.live_server import LiveServer
from tests.support.sockets import Listener
from tests.support.waitlist import SEATS_FREE, invariant_violations

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    live = LiveServer(database_url, redis_url)
    yield live
    live.stop()


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with await live_client(server.base) as client:
        yield client


async def join_all(
    http: httpx.AsyncClient, event_id: str, people: list[dict[str, Any]]
) -> list[httpx.Response]:
    return list(
        await asyncio.gather(
            *(
                http.post(f"/event/{event_id}/waitlist", json={"attendeeId": p["id"]})
                for p in people
            )
        )
    )


async def line(http: httpx.AsyncClient, event_id: str) -> list[dict[str, Any]]:
    answer = await http.get(f"/event/{event_id}/waitlist", params={"limit": 1000})
    assert answer.status_code == 200
    return list(answer.json()["result"])


def confirmation_jobs_per_registration(db) -> Counter[str]:
    rows = db.execute(
        "SELECT args ->> 'registration_id' FROM procrastinate_jobs"
        " WHERE task_name = 'send_confirmation'"
    ).fetchall()
    return Counter(row[0] for row in rows)


async def test_200_racing_for_10_seats_then_the_losers_race_to_join(http, db):
    event = await make_event(http, maxAttendees=10)
    people = await attendees(http, 200)
    registered = await register_all(http, event["id"], people)
    assert Counter(r.status_code for r in registered) == {201: 10, 409: 190}
    losers = [p for p, r in zip(people, registered, strict=True) if r.status_code == 409]

    joined = await join_all(http, event["id"], losers)
    assert Counter(r.status_code for r in joined) == {201: 190}
    positions = sorted(r.json()["result"]["position"] for r in joined)
    assert positions == list(range(1, 191))  # no gaps, no repeats
    # What each join answered is the place the list shows.
    answered = {r.json()["result"]["attendeeId"]: r.json()["result"]["position"] for r in joined}
    listed = await line(http, event["id"])
    assert {e["attendee"]["id"]: e["position"] for e in listed} == answered
    assert [e["position"] for e in listed] == list(range(1, 191))
    shown = (await http.get(f"/event/{event['id']}")).json()["result"]
    assert (shown["registeredCount"], shown["waitlistCount"]) == (10, 190)
    assert invariant_violations(db) == []


async def test_50_racing_cancellations_promote_the_first_50(http, db, server):
    event = await make_event(http, maxAttendees=60)
    holders = await attendees(http, 60)
    booked = await register_all(http, event["id"], holders)
    assert all(r.status_code == 201 for r in booked)
    waiting = await attendees(http, 80)
    joined = await join_all(http, event["id"], waiting)
    assert all(r.status_code == 201 for r in joined)
    before = await line(http, event["id"])
    by_place = [e["attendee"]["id"] for e in before]

    subscriber = await Listener().connect(server.base)
    try:
        assert (await subscriber.ask("subscribe", {"eventId": event["id"]}))["ok"] is True
        canceled = booked[:50]
        random.shuffle(canceled)
        answers = await asyncio.gather(
            *(http.delete(f"/registration/{r.json()['result']['id']}") for r in canceled)
        )
        assert Counter(a.status_code for a in answers) == {200: 50}

        seated = {
            row[0]
            for row in db.execute(
                "SELECT attendee_id::text FROM registrations"
                " WHERE event_id = %s AND promoted_at IS NOT NULL",
                (event["id"],),
            )
        }
        assert seated == set(by_place[:50])  # exactly the first 50, none skipped
        after = await line(http, event["id"])
        assert [e["attendee"]["id"] for e in after] == by_place[50:]
        assert after[0]["position"] == 1  # the old position 51 heads the line
        shown = (await http.get(f"/event/{event['id']}")).json()["result"]
        assert (shown["registeredCount"], shown["waitlistCount"]) == (60, 30)
        assert invariant_violations(db) == []
        # Every promotion: one confirmation job, and one `waitlist.promoted` to the room.
        jobs = confirmation_jobs_per_registration(db)
        promoted_ids = {
            row[0]
            for row in db.execute(
                "SELECT id::text FROM registrations WHERE promoted_at IS NOT NULL"
            )
        }
        assert {rid: jobs[rid] for rid in promoted_ids} == {rid: 1 for rid in promoted_ids}
        # The last promotion's message, then all that came before it.
        last = max(promoted_ids)
        await subscriber.wait_for("waitlist.promoted", lambda p: last in p["registrationIds"])
        for rid in promoted_ids:
            await subscriber.wait_for(
                "waitlist.promoted", lambda p, rid=rid: rid in p["registrationIds"]
            )
        messages = subscriber.of("waitlist.promoted")
        assert {m["eventId"] for m in messages} == {event["id"]}
        announced = [rid for m in messages for rid in m["registrationIds"]]
        assert sorted(announced) == sorted(promoted_ids)
    finally:
        await subscriber.close()


async def test_capacity_raise_racing_cancellations_and_joins_keeps_the_invariant(http, db):
    event = await make_event(http, maxAttendees=30)
    holders = await attendees(http, 30)
    booked = await register_all(http, event["id"], holders)
    assert all(r.status_code == 201 for r in booked)
    waiting = await attendees(http, 40)
    assert all(r.status_code == 201 for r in await join_all(http, event["id"], waiting))
    newcomers = await attendees(http, 30)

    cancels = [http.delete(f"/registration/{r.json()['result']['id']}") for r in booked]
    joins = [
        http.post(f"/event/{event['id']}/waitlist", json={"attendeeId": p["id"]}) for p in newcomers
    ]
    raise_ = [http.patch(f"/event/{event['id']}", json={"maxAttendees": 50})]
    mixed = cancels + joins + raise_
    order = list(range(len(mixed)))
    random.shuffle(order)
    answers = await asyncio.gather(*(mixed[i] for i in order))
    by_index = dict(zip(order, answers, strict=True))
    assert all(by_index[i].status_code == 200 for i in range(len(cancels)))
    join_answers = [by_index[i] for i in range(len(cancels), len(cancels) + len(joins))]
    assert {r.status_code for r in join_answers} <= {201, 409}
    assert {r.json()["message"] for r in join_answers if r.status_code == 409} <= {SEATS_FREE}
    assert by_index[len(mixed) - 1].status_code == 200

    assert invariant_violations(db) == []
    rows = db.execute(
        "SELECT registered_count, max_attendees, waitlist_count FROM events WHERE id = %s",
        (event["id"],),
    ).fetchone()
    joined_late = sum(r.status_code == 201 for r in join_answers)
    # 50 seats for the 40 + joined_late in line: as many seated as fit, the rest wait.
    assert rows == (min(50, 40 + joined_late), 50, max(0, 40 + joined_late - 50))
    # Every registration made, promoted or not, has exactly one confirmation job.
    jobs = confirmation_jobs_per_registration(db)
    current = [row[0] for row in db.execute("SELECT id::text FROM registrations")]
    assert all(jobs[rid] == 1 for rid in current)
    promoted = db.execute("SELECT count(*) FROM registrations WHERE promoted_at IS NOT NULL")
    assert promoted.fetchone() == (min(50, 40 + joined_late),)


async def test_racing_attendee_deletions_promote_at_each_event(http, db):
    events = [await make_event(http, maxAttendees=3) for _ in range(3)]
    leavers = await attendees(http, 3)
    holders = await attendees(http, 3)
    for event in events:
        booked = await register_all(http, event["id"], [*leavers[:2], holders[0]])
        assert all(r.status_code == 201 for r in booked)
    waiting = await attendees(http, 10)
    heads = []
    for event in events:
        assert all(r.status_code == 201 for r in await join_all(http, event["id"], waiting))
        in_line = [e["attendee"]["id"] for e in await line(http, event["id"])]
        heads.append([a for a in in_line if a != waiting[5]["id"]][:2])
    # Two leavers each free a seat at all three events, racing the deletion of someone
    # who waits at all three.
    answers = await asyncio.gather(
        *(http.delete(f"/attendee/{p['id']}") for p in [*leavers[:2], waiting[5]])
    )
    assert Counter(a.status_code for a in answers) == {200: 3}
    for event, first_two in zip(events, heads, strict=True):
        shown = (await http.get(f"/event/{event['id']}")).json()["result"]
        assert (shown["registeredCount"], shown["waitlistCount"]) == (3, 7)
        seated = {r["attendeeId"] for r in shown["eventAttendees"]}
        assert seated == {holders[0]["id"], *first_two}
    assert invariant_violations(db) == []
