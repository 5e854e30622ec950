"""Confirmation mail: deferred with the registration, delivered once, rendered right."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import icalendar
import psycopg
from fastapi import FastAPI

from eventms.config import Settings
from eventms.db.driver import driver_connection
from eventms.notifications.jobs import send_confirmation
from eventms.registrations.service import register as register_attendee
from tests.support.api import make_attendee, make_event, register
from tests.support.mail import drain
from tests.support.smtp import SmtpSink, parts


def confirmation_jobs(db: psycopg.Connection) -> list[str]:
    rows = db.execute(
        "SELECT args ->> 'registration_id' FROM procrastinate_jobs"
        " WHERE task_name = 'send_confirmation'"
    ).fetchall()
    return [row[0] for row in rows]


async def test_registration_sends_one_confirmation(
    client, db, sink: SmtpSink, mail_settings: Settings
) -> None:
    event = await make_event(
        client,
        name="Launch Party",
        date="2030-01-15",
        location="Hall A",
        startTime="18:30",
        timezone="Europe/Paris",
    )
    person = await make_attendee(client, name="Ada Lovelace", email="ada@example.com")
    response = await register(client, event["id"], person["id"])
    assert response.status_code == 201
    registration_id = response.json()["result"]["id"]
    assert confirmation_jobs(db) == [registration_id]

    await drain(mail_settings)
    await drain(mail_settings)  # a second pass finds nothing left to send

    [message] = sink.messages
    assert message["Subject"] == "Registration Confirmation"
    assert message["To"].addresses[0].addr_spec == "ada@example.com"
    assert message["To"].addresses[0].display_name == "Ada Lovelace"
    text, html, attachments = parts(message)
    for body in (text, html):
        assert "Hello Ada Lovelace" in body
        assert "Launch Party" in body
        assert "Tuesday, 15 January 2030 at 18:30 (Europe/Paris)" in body
        assert "Hall A" in body
    [ics] = attachments
    assert ics.get_content_type() == "text/calendar"
    assert ics.get_filename() == "event.ics"
    calendar = icalendar.Calendar.from_ical(ics.get_content())
    [vevent] = calendar.walk("VEVENT")
    assert str(vevent["SUMMARY"]) == "Launch Party"
    assert str(vevent["LOCATION"]) == "Hall A"
    assert vevent.decoded("DTSTART") == datetime(
        2030, 1, 15, 18, 30, tzinfo=ZoneInfo("Europe/Paris")
    )
    sent = db.execute(
        "SELECT confirmation_sent_at FROM registrations WHERE id = %s", (registration_id,)
    ).fetchone()
    assert sent is not None and sent[0] is not None


async def test_html_escapes_what_attendees_type(client, sink: SmtpSink, mail_settings) -> None:
    event = await make_event(client, name="Tom & Jerry's <Show>")
    person = await make_attendee(client, name="<script>alert(1)</script>")
    assert (await register(client, event["id"], person["id"])).status_code == 201
    await drain(mail_settings)
    [message] = sink.messages
    text, html, _ = parts(message)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Tom &amp; Jerry&#39;s &lt;Show&gt;" in html
    assert "Hello <script>alert(1)</script>" in text  # plain text is not HTML
    [ics] = list(message.iter_attachments())
    [vevent] = icalendar.Calendar.from_ical(ics.get_content()).walk("VEVENT")
    # A date-only event is an all-day calendar entry.
    assert vevent.decoded("DTSTART").isoformat() == "2030-01-15"


async def test_job_commits_and_rolls_back_with_the_registration(client, db, app: FastAPI) -> None:
    event = await make_event(client)
    first = await make_attendee(client)
    second = await make_attendee(client)
    async with app.state["sessions"]() as session:
        rolled_back = await register_attendee(
            session, event_id=uuid.UUID(event["id"]), attendee_id=uuid.UUID(first["id"])
        )
        rolled_back_id = rolled_back.id
        assert len(confirmation_jobs(db)) == 0  # not visible before commit
        await session.rollback()
    assert confirmation_jobs(db) == []
    assert db.execute("SELECT count(*) FROM registrations").fetchone() == (0,)

    async with app.state["sessions"]() as session:
        committed = await register_attendee(
            session, event_id=uuid.UUID(event["id"]), attendee_id=uuid.UUID(second["id"])
        )
        committed_id = committed.id
        await session.commit()
    assert confirmation_jobs(db) == [str(committed_id)]
    assert rolled_back_id != committed_id


async def test_the_pipelined_deferral_makes_procrastinates_own_job(
    client, db, app: FastAPI
) -> None:
    """The registration defers its job with procrastinate's SQL itself (in its INSERT,
    so that it can travel in one round trip with the answer's read): the job is the
    one `defer_async` makes; a refused registration makes none."""
    event = await make_event(client, maxAttendees=1)
    person, other = await make_attendee(client), await make_attendee(client)
    theirs = str(uuid.uuid4())
    async with app.state["sessions"]() as session:
        made = await register_attendee(
            session, event_id=uuid.UUID(event["id"]), attendee_id=uuid.UUID(person["id"])
        )
        ours = str(made.id)
        connection = await driver_connection(session)
        await send_confirmation.configure(connection=connection).defer_async(
            registration_id=theirs
        )
        await session.commit()
    full = await register(client, event["id"], other["id"])
    assert full.status_code == 409
    columns = (
        "queue_name, task_name, priority, lock, queueing_lock, args - 'registration_id',"
        " status, scheduled_at, attempts, abort_requested, worker_id"
    )
    rows = db.execute(
        f"SELECT {columns}, (SELECT array_agg(type::text ORDER BY id) FROM procrastinate_events e"
        "  WHERE e.job_id = j.id)"
        " FROM procrastinate_jobs j WHERE args ->> 'registration_id' = ANY(%s)"
        " ORDER BY args ->> 'registration_id' = %s",
        ([ours, theirs], theirs),
    ).fetchall()
    assert len(rows) == 2 and rows[0] == rows[1]
    assert db.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (2,)
    assert rows[0][:3] == ("mail", "send_confirmation", 0)
    assert rows[0][-1] == ["deferred"]


async def test_refused_registration_defers_nothing(client, db) -> None:
    event = await make_event(client, maxAttendees=1)
    first = await make_attendee(client)
    second = await make_attendee(client)
    assert (await register(client, event["id"], first["id"])).status_code == 201
    assert (await register(client, event["id"], first["id"])).status_code == 409  # duplicate
    assert (await register(client, event["id"], second["id"])).status_code == 409  # full
    assert len(confirmation_jobs(db)) == 1


async def test_canceled_before_sending_gets_no_mail(client, sink: SmtpSink, mail_settings) -> None:
    event = await make_event(client)
    person = await make_attendee(client)
    registration = (await register(client, event["id"], person["id"])).json()["result"]
    assert (await client.delete(f"/registration/{registration['id']}")).status_code == 200
    await drain(mail_settings)
    assert sink.messages == []
