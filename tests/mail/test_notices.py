"""Notices: a moved event's attendees get `Event Updated` (same UID, higher SEQUENCE),
a deleted event's registered and waiting attendees `Event Canceled`; nobody else
hears anything, quick moves coalesce without losing the last, and the jobs commit
and roll back with the write."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import psycopg
import pytest
from fastapi import FastAPI

from eventms.config import Settings
from eventms.events.service import update_event
from tests.support.api import make_attendee, make_event, register
from tests.support.mail import drain
from tests.support.smtp import SmtpSink, by_subject, parts

UPDATED = "Event Updated"
CANCELED = "Event Canceled"


def vevent(message: EmailMessage) -> tuple[icalendar.Calendar, icalendar.cal.Component]:
    [ics] = [a for a in message.iter_attachments() if a.get_content_type() == "text/calendar"]
    assert ics.get_filename() == "event.ics"
    calendar = icalendar.Calendar.from_ical(ics.get_content())
    [event] = calendar.walk("VEVENT")
    return calendar, event


def sequence(event: icalendar.cal.Component) -> int:
    return int(event.get("SEQUENCE", 0))


def recipient(message: EmailMessage) -> str:
    return str(message["To"].addresses[0].addr_spec)


def to(messages: list[EmailMessage], email: str) -> list[EmailMessage]:
    return [m for m in messages if recipient(m) == email]


def notice_jobs(db: psycopg.Connection, task: str) -> list[Any]:
    return [
        row[0]
        for row in db.execute(
            "SELECT args FROM procrastinate_jobs WHERE task_name = %s ORDER BY id", (task,)
        ).fetchall()
    ]


async def full_event_with_waiting(client, **fields: Any) -> tuple[dict, list[dict], dict]:
    """An event with two seats, both taken, and one attendee waiting."""
    event = await make_event(client, maxAttendees=2, **fields)
    seated = [await make_attendee(client) for _ in range(2)]
    for person in seated:
        assert (await register(client, event["id"], person["id"])).status_code == 201
    waiting = await make_attendee(client)
    joined = await client.post(f"/event/{event['id']}/waitlist", json={"attendeeId": waiting["id"]})
    assert joined.status_code == 201
    return event, seated, waiting


async def test_a_move_tells_each_registered_attendee_what_changed(
    client, db, sink: SmtpSink, mail_settings: Settings
) -> None:
    event, seated, waiting = await full_event_with_waiting(
        client,
        name="Launch Party",
        date="2030-01-15",
        startTime="18:30",
        timezone="Europe/Paris",
        location="Hall A",
    )
    elsewhere = await make_event(client)
    bystander = await make_attendee(client)
    assert (await register(client, elsewhere["id"], bystander["id"])).status_code == 201
    await drain(mail_settings)
    confirmations = {
        recipient(m): m for m in by_subject(sink.messages, "Registration Confirmation")
    }
    assert len(confirmations) == 3

    moved = await client.patch(
        f"/event/{event['id']}", json={"date": "2030-01-16", "startTime": "19:00"}
    )
    assert moved.status_code == 200
    await drain(mail_settings)
    await drain(mail_settings)  # nothing left: one notice per attendee

    updates = by_subject(sink.messages, UPDATED)
    assert sorted(recipient(m) for m in updates) == sorted(p["email"] for p in seated)
    for message in updates:
        person = next(p for p in seated if p["email"] == recipient(message))
        assert message["To"].addresses[0].display_name == person["name"]
        text, html, _ = parts(message)
        assert (
            "When: Tuesday, 15 January 2030 at 18:30 (Europe/Paris)"
            " → Wednesday, 16 January 2030 at 19:00 (Europe/Paris)"
        ) in text
        assert "Where" not in text.split("So it now takes place")[0]  # the place stayed
        assert "Wednesday, 16 January 2030 at 19:00 (Europe/Paris)" in html
        assert f"Hello {person['name']}" in html
        assert "/manage/" in text
        _, confirmed = vevent(confirmations[recipient(message)])
        calendar, updated = vevent(message)
        assert str(updated["UID"]) == str(confirmed["UID"]) == f"{event['id']}@eventms"
        assert sequence(updated) > sequence(confirmed)
        assert str(calendar["METHOD"]) == "PUBLISH"
        assert updated.decoded("DTSTART") == datetime(
            2030, 1, 16, 19, 0, tzinfo=ZoneInfo("Europe/Paris")
        )
        assert str(updated["LOCATION"]) == "Hall A"
    assert to(sink.messages, waiting["email"]) == []  # waiting: no seat to move
    assert [m["Subject"] for m in to(sink.messages, bystander["email"])] == [
        "Registration Confirmation"
    ]


async def test_a_new_place_is_told_in_words_and_escaped(
    client, sink: SmtpSink, mail_settings: Settings
) -> None:
    event = await make_event(client, name="Tom & Jerry", location="Hall A")
    person = await make_attendee(client)
    assert (await register(client, event["id"], person["id"])).status_code == 201
    await drain(mail_settings)
    patched = await client.patch(f"/event/{event['id']}", json={"location": "<Room> B & C"})
    assert patched.status_code == 200
    await drain(mail_settings)
    [update] = by_subject(sink.messages, UPDATED)
    text, html, _ = parts(update)
    assert "Where: Hall A → <Room> B & C" in text
    assert "When:" not in text.split("So it now takes place")[0]
    assert "&lt;Room&gt; B &amp; C" in html and "<Room>" not in html
    assert "Tom &amp; Jerry" in html
    _, calendar_event = vevent(update)
    assert str(calendar_event["LOCATION"]) == "<Room> B & C"
    assert calendar_event.decoded("DTSTART") == date(2030, 1, 15)  # still all day

    # Taking the place away is a move too: "to be announced".
    assert (await client.patch(f"/event/{event['id']}", json={"location": None})).status_code == 200
    await drain(mail_settings)
    second = by_subject(sink.messages, UPDATED)[-1]
    assert "Where: <Room> B & C → to be announced" in parts(second)[0]
    assert sequence(vevent(second)[1]) == sequence(calendar_event) + 1


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "Renamed"},
        {"description": "Now with cake"},
        {"maxAttendees": 20},
        {"date": "2030-01-15", "location": "Hall A"},  # the values it already has
    ],
    ids=["name", "description", "capacity", "same-values"],
)
async def test_changes_that_do_not_move_the_event_send_nothing(
    client, db, sink: SmtpSink, mail_settings: Settings, changes: dict[str, Any]
) -> None:
    event = await make_event(client, date="2030-01-15", location="Hall A")
    person = await make_attendee(client)
    assert (await register(client, event["id"], person["id"])).status_code == 201
    assert (await client.patch(f"/event/{event['id']}", json=changes)).status_code == 200
    assert notice_jobs(db, "send_event_updated") == []
    await drain(mail_settings)
    assert [m["Subject"] for m in sink.messages] == ["Registration Confirmation"]
    assert db.execute("SELECT calendar_sequence FROM events").fetchone() == (0,)


async def test_two_quick_moves_coalesce_into_one_mail_with_the_final_state(
    client, sink: SmtpSink, mail_settings: Settings
) -> None:
    event = await make_event(client, date="2030-01-15", location="Hall A")
    people = [await make_attendee(client) for _ in range(3)]
    for person in people:
        assert (await register(client, event["id"], person["id"])).status_code == 201
    await drain(mail_settings)
    for move in ({"date": "2030-02-01"}, {"date": "2030-03-01", "location": "Hall B"}):
        assert (await client.patch(f"/event/{event['id']}", json=move)).status_code == 200
    await drain(mail_settings, concurrency=1)  # one job at a time: the first tells all

    updates = by_subject(sink.messages, UPDATED)
    assert sorted(recipient(m) for m in updates) == sorted(p["email"] for p in people)
    for message in updates:
        text = parts(message)[0]
        assert "When: Tuesday, 15 January 2030 → Friday, 1 March 2030" in text
        assert "Where: Hall A → Hall B" in text
        assert "February" not in text
        assert sequence(vevent(message)[1]) == 2


async def test_quick_moves_with_a_busy_worker_lose_none_and_end_on_the_final_state(
    client, sink: SmtpSink, mail_settings: Settings
) -> None:
    event = await make_event(client, date="2030-01-15")
    people = [await make_attendee(client) for _ in range(6)]
    for person in people:
        assert (await register(client, event["id"], person["id"])).status_code == 201
    await drain(mail_settings)
    for day in ("2030-02-01", "2030-03-01"):
        assert (await client.patch(f"/event/{event['id']}", json={"date": day})).status_code == 200
    await drain(mail_settings, concurrency=4)

    for person in people:
        mails = by_subject(to(sink.messages, person["email"]), UPDATED)
        assert 1 <= len(mails) <= 2
        last = mails[-1]
        assert "→ Friday, 1 March 2030" in parts(last)[0]
        _, calendar_event = vevent(last)
        assert calendar_event.decoded("DTSTART") == date(2030, 3, 1)
        assert sequence(calendar_event) == 2


async def test_moves_told_apart_are_two_mails_each_from_the_last_told_state(
    client, sink: SmtpSink, mail_settings: Settings
) -> None:
    event = await make_event(client, date="2030-01-15")
    person = await make_attendee(client)
    assert (await register(client, event["id"], person["id"])).status_code == 201
    await drain(mail_settings)
    for day in ("2030-02-01", "2030-03-01"):
        assert (await client.patch(f"/event/{event['id']}", json={"date": day})).status_code == 200
        await drain(mail_settings)

    first, second = by_subject(sink.messages, UPDATED)
    assert "When: Tuesday, 15 January 2030 → Friday, 1 February 2030" in parts(first)[0]
    assert "When: Friday, 1 February 2030 → Friday, 1 March 2030" in parts(second)[0]
    assert [sequence(vevent(m)[1]) for m in (first, second)] == [1, 2]
    assert first["Message-ID"] != second["Message-ID"]


async def test_a_registration_after_a_move_is_told_only_of_later_moves(
    client, sink: SmtpSink, mail_settings: Settings
) -> None:
    event = await make_event(client, date="2030-01-15")
    early, late = await make_attendee(client), await make_attendee(client)
    assert (await register(client, event["id"], early["id"])).status_code == 201
    assert (
        await client.patch(f"/event/{event['id']}", json={"date": "2030-02-01"})
    ).status_code == 200
    assert (await register(client, event["id"], late["id"])).status_code == 201
    await drain(mail_settings)
    assert by_subject(to(sink.messages, late["email"]), UPDATED) == []
    assert len(by_subject(to(sink.messages, early["email"]), UPDATED)) == 1

    assert (
        await client.patch(f"/event/{event['id']}", json={"date": "2030-03-01"})
    ).status_code == 200
    await drain(mail_settings)
    [told] = by_subject(to(sink.messages, late["email"]), UPDATED)
    # What their confirmation said, not the state before the first move.
    assert "When: Friday, 1 February 2030 → Friday, 1 March 2030" in parts(told)[0]


async def test_a_delete_tells_registered_and_waiting_attendees_and_nobody_else(
    client, db, sink: SmtpSink, mail_settings: Settings
) -> None:
    event, seated, waiting = await full_event_with_waiting(
        client, name="Gala", date="2030-01-15", startTime="20:00", location="Opera"
    )
    elsewhere = await make_event(client)
    bystander = await make_attendee(client)
    assert (await register(client, elsewhere["id"], bystander["id"])).status_code == 201
    loner = await make_attendee(client)
    # A move first: the cancellation must outrank the update in the calendar.
    assert (
        await client.patch(f"/event/{event['id']}", json={"startTime": "21:00"})
    ).status_code == 200
    await drain(mail_settings)
    confirmed = {
        recipient(m): vevent(m)[1] for m in by_subject(sink.messages, "Registration Confirmation")
    }
    updated = {recipient(m): vevent(m)[1] for m in by_subject(sink.messages, UPDATED)}

    assert (await client.delete(f"/event/{event['id']}")).status_code == 200
    assert len(notice_jobs(db, "send_event_canceled")) == 3  # deferred with the delete
    await drain(mail_settings)
    await drain(mail_settings)

    cancellations = by_subject(sink.messages, CANCELED)
    expected = sorted([p["email"] for p in seated] + [waiting["email"]])
    assert sorted(recipient(m) for m in cancellations) == expected
    for message in cancellations:
        text, html, _ = parts(message)
        for body in (text, html):
            assert "Gala" in body and "canceled" in body
            assert "Tuesday, 15 January 2030 at 21:00 (UTC)" in body
            assert "Opera" in body
        calendar, cancel = vevent(message)
        assert str(calendar["METHOD"]) == "CANCEL"
        assert str(cancel["STATUS"]) == "CANCELLED"
        assert str(cancel["UID"]) == f"{event['id']}@eventms"
        if recipient(message) == waiting["email"]:
            assert "waiting list" in text
        else:
            assert str(cancel["UID"]) == str(confirmed[recipient(message)]["UID"])
            assert sequence(cancel) > sequence(updated[recipient(message)])
    assert all(m["Subject"] != CANCELED for m in to(sink.messages, bystander["email"]))
    assert to(sink.messages, loner["email"]) == []


async def test_a_delete_of_an_event_without_attendees_defers_nothing(client, db) -> None:
    event = await make_event(client)
    assert (await client.delete(f"/event/{event['id']}")).status_code == 200
    assert notice_jobs(db, "send_event_canceled") == []


async def test_notice_jobs_commit_and_roll_back_with_the_move(client, db, app: FastAPI) -> None:
    event = await make_event(client, date="2030-01-15")
    person = await make_attendee(client)
    assert (await register(client, event["id"], person["id"])).status_code == 201
    event_id = uuid.UUID(event["id"])
    async with app.state["sessions"]() as session:
        await update_event(session, event_id=event_id, changes={"date": date(2030, 2, 1)})
        assert notice_jobs(db, "send_event_updated") == []  # not visible before commit
        await session.rollback()
    assert notice_jobs(db, "send_event_updated") == []
    assert db.execute("SELECT notice_told FROM registrations").fetchone() == (None,)

    async with app.state["sessions"]() as session:
        await update_event(session, event_id=event_id, changes={"date": date(2030, 2, 1)})
        await session.commit()
    [(registration,)] = db.execute("SELECT id FROM registrations").fetchall()
    assert notice_jobs(db, "send_event_updated") == [{"registration_id": str(registration)}]


async def test_a_refused_move_defers_nothing(client, db) -> None:
    taken = await make_event(client, date="2030-01-15", location="Hall A")
    event = await make_event(client, date="2030-01-16", location="Hall A")
    person = await make_attendee(client)
    assert (await register(client, event["id"], person["id"])).status_code == 201
    clash = await client.patch(f"/event/{event['id']}", json={"date": taken["date"]})
    assert clash.status_code == 409
    assert notice_jobs(db, "send_event_updated") == []
