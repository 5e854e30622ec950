"""The waiting list through the API: join, list, leave, the refusals, and promotion
when a seat frees up (cancellation, attendee deletion, higher capacity)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg

from tests.support.api import make_attendee, make_event, register
from tests.support.waitlist import (
    ALREADY_REGISTERED,
    ALREADY_WAITING,
    SEATS_FREE,
    invariant_violations,
)


async def join(client: httpx.AsyncClient, event_id: str, attendee_id: str) -> httpx.Response:
    return await client.post(f"/event/{event_id}/waitlist", json={"attendeeId": attendee_id})


async def full_event(client: httpx.AsyncClient, seats: int = 1) -> tuple[dict[str, Any], list[str]]:
    """An event with `seats` seats, all taken; the ids of the registrations."""
    event = await make_event(client, maxAttendees=seats)
    held = []
    for _ in range(seats):
        person = await make_attendee(client)
        answer = await register(client, event["id"], person["id"])
        assert answer.status_code == 201
        held.append(answer.json()["result"]["id"])
    return event, held


async def test_join_list_and_leave(client, db):
    event, _ = await full_event(client)
    people = [await make_attendee(client) for _ in range(3)]
    answers = [await join(client, event["id"], p["id"]) for p in people]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert {a.json()["message"] for a in answers} == {"Added to the waiting list"}
    first = answers[0].json()["result"]
    assert set(first) == {"id", "eventId", "attendeeId", "position", "createdAt"}
    assert (first["eventId"], first["attendeeId"]) == (event["id"], people[0]["id"])
    assert [a.json()["result"]["position"] for a in answers] == [1, 2, 3]

    shown = (await client.get(f"/event/{event['id']}")).json()["result"]
    assert shown["waitlistCount"] == 3
    assert list(shown)[-3:] == ["waitlistCount", "checkedInCount", "eventAttendees"]

    listed = await client.get(f"/event/{event['id']}/waitlist")
    assert listed.status_code == 200
    body = listed.json()
    assert body["meta"] == {"page": 1, "limit": 100, "total": 3}
    assert [(e["position"], e["attendee"]["id"]) for e in body["result"]] == [
        (i + 1, p["id"]) for i, p in enumerate(people)
    ]
    second_page = (await client.get(f"/event/{event['id']}/waitlist?page=2&limit=2")).json()
    assert [e["position"] for e in second_page["result"]] == [3]
    assert second_page["meta"]["total"] == 3

    middle = answers[1].json()["result"]["id"]
    left = await client.delete(f"/waitlist/{middle}")
    assert left.status_code == 200
    assert left.json()["message"] == "Removed from the waiting list"
    assert left.json()["result"]["position"] == 2
    again = await client.delete(f"/waitlist/{middle}")
    assert again.status_code == 404
    listed = (await client.get(f"/event/{event['id']}/waitlist")).json()["result"]
    assert [(e["position"], e["attendee"]["id"]) for e in listed] == [
        (1, people[0]["id"]),
        (2, people[2]["id"]),
    ]
    assert (await client.get(f"/event/{event['id']}")).json()["result"]["waitlistCount"] == 2
    assert invariant_violations(db) == []


async def test_joining_refusals(client, db):
    open_event = await make_event(client, maxAttendees=2)
    person = await make_attendee(client)
    answer = await join(client, open_event["id"], person["id"])
    assert (answer.status_code, answer.json()["message"]) == (409, SEATS_FREE)

    event, _ = await full_event(client)
    holder = (await client.get(f"/event/{event['id']}")).json()["result"]["eventAttendees"][0]
    answer = await join(client, event["id"], holder["attendeeId"])
    assert (answer.status_code, answer.json()["message"]) == (409, ALREADY_REGISTERED)
    assert (await join(client, event["id"], person["id"])).status_code == 201
    answer = await join(client, event["id"], person["id"])
    assert (answer.status_code, answer.json()["message"]) == (409, ALREADY_WAITING)

    unknown = str(uuid.uuid4())
    answer = await join(client, unknown, person["id"])
    assert (answer.status_code, answer.json()["message"]) == (
        404,
        f"Event with ID {unknown} not found",
    )
    # An unknown attendee is a 404 even where seats are free.
    for target in (event, open_event):
        answer = await join(client, target["id"], unknown)
        assert (answer.status_code, answer.json()["message"]) == (
            404,
            f"Attendee with ID {unknown} not found",
        )
    assert (await join(client, "not-a-uuid", person["id"])).status_code == 404
    assert (await client.get(f"/event/{unknown}/waitlist")).status_code == 404
    assert (await client.delete(f"/waitlist/{unknown}")).status_code == 404
    for bad in ({}, {"attendeeId": "nope"}, {"attendeeId": 7}):
        answer = await client.post(f"/event/{event['id']}/waitlist", json=bad)
        assert answer.status_code == 400, answer.text
    # A full registration is still the original's answer for someone waiting.
    answer = await register(client, event["id"], person["id"])
    assert (answer.status_code, answer.json()["message"]) == (409, "Sorry the event is full")
    assert db.execute("SELECT count(*) FROM waitlist_entries").fetchone() == (1,)
    assert invariant_violations(db) == []


async def test_cancellation_promotes_the_head(client, db):
    event, held = await full_event(client, seats=2)
    people = [await make_attendee(client) for _ in range(3)]
    for p in people:
        assert (await join(client, event["id"], p["id"])).status_code == 201
    canceled = await client.delete(f"/registration/{held[0]}")
    assert canceled.status_code == 200
    assert canceled.json()["result"]["event"]["registeredCount"] == 2
    shown = (await client.get(f"/event/{event['id']}")).json()["result"]
    assert shown["waitlistCount"] == 2
    assert people[0]["id"] in {r["attendeeId"] for r in shown["eventAttendees"]}
    line = (await client.get(f"/event/{event['id']}/waitlist")).json()["result"]
    assert [(e["position"], e["attendeeId"]) for e in line] == [
        (1, people[1]["id"]),
        (2, people[2]["id"]),
    ]
    promoted = db.execute(
        "SELECT attendee_id::text, promoted_at IS NOT NULL FROM registrations"
        " WHERE promoted_at IS NOT NULL"
    ).fetchall()
    assert promoted == [(people[0]["id"], True)]
    # The promoted attendee's own view shows the seat (its cache was dropped).
    mine = (await client.get(f"/attendee/{people[0]['id']}")).json()["result"]
    assert [r["eventId"] for r in mine["registrations"]] == [event["id"]]
    assert invariant_violations(db) == []


async def test_higher_capacity_promotes_as_many_as_it_adds(client, db):
    event, _ = await full_event(client, seats=1)
    people = [await make_attendee(client) for _ in range(4)]
    for p in people:
        assert (await join(client, event["id"], p["id"])).status_code == 201
    raised = await client.patch(f"/event/{event['id']}", json={"maxAttendees": 4})
    assert raised.status_code == 200
    result = raised.json()["result"]
    assert (result["registeredCount"], result["waitlistCount"]) == (4, 1)
    registered = {r["attendeeId"] for r in result["eventAttendees"]}
    assert {p["id"] for p in people[:3]} <= registered
    assert people[3]["id"] not in registered
    # Past the line: the rest are free seats, and joining is refused again.
    raised = await client.patch(f"/event/{event['id']}", json={"maxAttendees": 10})
    assert (
        raised.json()["result"]["registeredCount"],
        raised.json()["result"]["waitlistCount"],
    ) == (
        5,
        0,
    )
    late = await make_attendee(client)
    assert (await join(client, event["id"], late["id"])).status_code == 409
    assert invariant_violations(db) == []


async def test_attendee_deletion_promotes_at_each_event(client, db):
    leaver = await make_attendee(client)
    events = []
    for _ in range(3):
        event = await make_event(client, maxAttendees=2)
        other = await make_attendee(client)
        assert (await register(client, event["id"], other["id"])).status_code == 201
        assert (await register(client, event["id"], leaver["id"])).status_code == 201
        events.append(event)
    waiting = []
    for event in events:
        pair = [await make_attendee(client) for _ in range(2)]
        for p in pair:
            assert (await join(client, event["id"], p["id"])).status_code == 201
        waiting.append(pair)
    # The leaver also waits elsewhere: that entry goes with them.
    elsewhere, _ = await full_event(client)
    assert (await join(client, elsewhere["id"], leaver["id"])).status_code == 201

    assert (await client.delete(f"/attendee/{leaver['id']}")).status_code == 200
    for event, pair in zip(events, waiting, strict=True):
        shown = (await client.get(f"/event/{event['id']}")).json()["result"]
        assert (shown["registeredCount"], shown["waitlistCount"]) == (2, 1)
        assert pair[0]["id"] in {r["attendeeId"] for r in shown["eventAttendees"]}
    shown = (await client.get(f"/event/{elsewhere['id']}")).json()["result"]
    assert shown["waitlistCount"] == 0
    jobs = db.execute(
        "SELECT count(*) FROM procrastinate_jobs j JOIN registrations r"
        " ON r.id::text = j.args ->> 'registration_id'"
        " WHERE j.task_name = 'send_confirmation' AND r.promoted_at IS NOT NULL"
    ).fetchone()
    assert jobs == (3,)
    assert invariant_violations(db) == []


async def test_a_cancellation_by_any_path_promotes(client, db):
    # Only the database can let that happen (the seat is given to the line first):
    # a raw cancellation makes a free seat that the trigger hands over in place.
    event, held = await full_event(client, seats=1)
    person = await make_attendee(client)
    assert (await join(client, event["id"], person["id"])).status_code == 201
    db.execute("DELETE FROM registrations WHERE id = %s", (held[0],))
    assert db.execute(
        "SELECT attendee_id::text FROM registrations WHERE event_id = %s", (event["id"],)
    ).fetchall() == [(person["id"],)]
    assert db.execute("SELECT count(*) FROM waitlist_entries").fetchone() == (0,)
    assert invariant_violations(db) == []


def test_the_database_refuses_a_free_seat_while_someone_waits(db):
    """The deferred constraint trigger: whatever path writes, the commit is refused."""
    event_id, attendee_id = uuid.uuid4(), uuid.uuid4()
    db.execute(
        "INSERT INTO events (id, name, date, max_attendees) VALUES (%s, 'X', '2030-01-01', 1)",
        (event_id,),
    )
    db.execute(
        "INSERT INTO attendees (id, name, email) VALUES (%s, 'A', 'a@example.com')", (attendee_id,)
    )
    db.execute(
        "INSERT INTO registrations (id, event_id, attendee_id) VALUES (gen_random_uuid(), %s, %s)",
        (event_id, attendee_id),
    )
    other = uuid.uuid4()
    db.execute(
        "INSERT INTO attendees (id, name, email) VALUES (%s, 'B', 'b@example.com')", (other,)
    )
    db.execute(
        "INSERT INTO waitlist_entries (id, event_id, attendee_id)"
        " VALUES (gen_random_uuid(), %s, %s)",
        (event_id, other),
    )
    # Bypass the promotion: a counter that says a seat is free while B waits.
    try:
        with db.transaction():
            db.execute(
                "UPDATE events SET max_attendees = 1, registered_count = 0 WHERE id = %s",
                (event_id,),
            )
    except psycopg.errors.CheckViolation as error:
        assert error.diag.constraint_name == "events_no_free_seat_while_waiting"
    else:
        raise AssertionError("the commit was not refused")
    assert invariant_violations(db) == []
