"""Reminder sweep on a simulated clock: due once, caught up after downtime, none for
begun events or registrations made inside the window, re-armed when an event moves."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.support.api import make_attendee, make_event, register
from tests.support.mail import drain, sweep
from tests.support.smtp import SmtpSink, body_text, by_subject

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def at(moment: datetime) -> dict[str, str]:
    """Event fields for a start at `moment` (UTC)."""
    return {
        "date": moment.date().isoformat(),
        "startTime": moment.strftime("%H:%M"),
        "timezone": "UTC",
    }


async def registered_for(client, **event_fields) -> tuple[dict, dict]:
    event = await make_event(client, **event_fields)
    person = await make_attendee(client)
    assert (await register(client, event["id"], person["id"])).status_code == 201
    return event, person


async def test_reminder_sent_once_when_due(
    client, database_url, sink: SmtpSink, mail_settings
) -> None:
    start = NOW + timedelta(hours=30)
    _event, person = await registered_for(client, name="Gala", location="Opera", **at(start))
    assert await sweep(database_url, mail_settings, NOW) == 0
    assert await sweep(database_url, mail_settings, start - timedelta(hours=24, minutes=1)) == 0
    due = start - timedelta(hours=23)
    assert await sweep(database_url, mail_settings, due) == 1
    assert await sweep(database_url, mail_settings, due) == 0  # the row is marked
    await drain(mail_settings)
    assert await sweep(database_url, mail_settings, due + timedelta(hours=1)) == 0
    await drain(mail_settings)

    [reminder] = by_subject(sink.messages, "Event Reminder")
    assert reminder["To"].addresses[0].addr_spec == person["email"]
    text = body_text(reminder)
    assert f"Hello {person['name']}" in text and "Gala" in text and "Opera" in text
    assert start.strftime("%H:%M") in text
    assert len(by_subject(sink.messages, "Registration Confirmation")) == 1


async def test_down_for_a_day_catches_up_unless_begun(
    client, db, database_url, sink: SmtpSink, mail_settings
) -> None:
    _upcoming, kept = await registered_for(client, **at(NOW + timedelta(hours=30)))
    _begun, _ = await registered_for(client, **at(NOW + timedelta(hours=26)))
    _, canceled_person = await registered_for(client, **at(NOW + timedelta(hours=31)))
    db.execute("DELETE FROM registrations WHERE attendee_id = %s", (canceled_person["id"],))
    # Nothing ran from NOW until NOW + 29 h; the first sweep after the restart:
    assert await sweep(database_url, mail_settings, NOW + timedelta(hours=29)) == 1
    await drain(mail_settings)
    [reminder] = by_subject(sink.messages, "Event Reminder")
    assert reminder["To"].addresses[0].addr_spec == kept["email"]


async def test_date_only_event_is_reminded_at_the_cron_hour_the_day_before(
    client, database_url, mail_settings
) -> None:
    day = (NOW + timedelta(days=3)).date()
    await registered_for(client, date=day.isoformat(), timezone="America/New_York")
    due = datetime.combine(day - timedelta(days=1), time(10), ZoneInfo("America/New_York"))
    assert await sweep(database_url, mail_settings, due - timedelta(minutes=1)) == 0
    assert await sweep(database_url, mail_settings, due) == 1

    other_day = day + timedelta(days=1)
    await registered_for(client, date=other_day.isoformat())  # no zone: UTC
    early = mail_settings.model_copy(update={"reminder_hour": 7})
    due = datetime.combine(other_day - timedelta(days=1), time(7), UTC)
    assert await sweep(database_url, early, due - timedelta(minutes=1)) == 0
    assert await sweep(database_url, early, due) == 1
    # Midnight of its day it has begun: too late for a reminder.
    assert await sweep(database_url, early, datetime.combine(other_day, time(0), UTC)) == 0


async def test_registration_inside_the_window_gets_its_confirmation_only(
    client, database_url, sink: SmtpSink, mail_settings
) -> None:
    start = NOW + timedelta(hours=3)
    event, _ = await registered_for(client, **at(start))
    assert await sweep(database_url, mail_settings, datetime.now(UTC)) == 0
    assert await sweep(database_url, mail_settings, start - timedelta(minutes=5)) == 0
    await drain(mail_settings)
    assert [m["Subject"] for m in sink.messages] == ["Registration Confirmation"]

    # Moved: the attendee hears about the new time.
    moved = start + timedelta(hours=2)
    assert (await client.patch(f"/event/{event['id']}", json=at(moved))).status_code == 200
    assert await sweep(database_url, mail_settings, datetime.now(UTC)) == 1
    await drain(mail_settings)
    [reminder] = by_subject(sink.messages, "Event Reminder")
    assert moved.strftime("%H:%M") in body_text(reminder)


@pytest.mark.parametrize("sent_before_move", [True, False])
async def test_moving_an_event_rearms_its_reminders(
    client, database_url, sink: SmtpSink, mail_settings, sent_before_move: bool
) -> None:
    start = NOW + timedelta(hours=30)
    event, _ = await registered_for(client, **at(start))
    assert await sweep(database_url, mail_settings, start - timedelta(hours=23)) == 1
    if sent_before_move:
        await drain(mail_settings)
    later = start + timedelta(days=1)
    assert (await client.patch(f"/event/{event['id']}", json=at(later))).status_code == 200
    # Renaming is not moving: nothing re-armed.
    assert (
        await client.patch(f"/event/{event['id']}", json={"name": "Renamed"})
    ).status_code == 200
    await drain(mail_settings)  # a job queued for the old start drops itself
    assert len(by_subject(sink.messages, "Event Reminder")) == (1 if sent_before_move else 0)
    assert await sweep(database_url, mail_settings, start - timedelta(hours=23)) == 0
    assert await sweep(database_url, mail_settings, later - timedelta(hours=23)) == 1
    await drain(mail_settings)
    reminders = by_subject(sink.messages, "Event Reminder")
    assert len(reminders) == (2 if sent_before_move else 1)
    assert later.strftime("%d %B %Y").lstrip("0") in body_text(reminders[-1])
