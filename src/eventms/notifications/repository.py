"""SQL of the mail jobs: what a mail says, what is due, what was sent, what failed.

Plain psycopg on the worker's connections. When an event starts is computed by
PostgreSQL (`date + start_time AT TIME ZONE zone`), so that the reminder sweep
selects and locks due rows in one statement instead of filtering in Python.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from eventms.config import Settings
from eventms.notifications.messages import CONFIRMATION, REMINDER, MailFacts

# When the event starts (an event with only a date: midnight local, its first
# moment), and when its reminder falls due (an event with only a date: the
# original's cron hour, local, the day before).
_ZONE = "coalesce(e.timezone, %(default_zone)s)"
STARTS_AT = f"""
    CASE WHEN e.start_time IS NULL THEN e.date::timestamp AT TIME ZONE {_ZONE}
         ELSE (e.date + e.start_time) AT TIME ZONE {_ZONE} END"""
DUE_AT = f"""
    CASE WHEN e.start_time IS NULL
         THEN ((e.date - 1) + make_time(%(reminder_hour)s, 0, 0)) AT TIME ZONE {_ZONE}
         ELSE (e.date + e.start_time) AT TIME ZONE {_ZONE}
              - make_interval(hours => %(lead_hours)s) END"""

MAIL_TASKS = ("send_confirmation", "send_reminder", "send_event_updated", "send_event_canceled")


def _clock_params(settings: Settings) -> dict[str, Any]:
    return {
        "default_zone": settings.default_event_timezone,
        "reminder_hour": settings.reminder_hour,
        "lead_hours": settings.reminder_lead_hours,
    }


async def load_facts(
    connection: AsyncConnection[Any], registration_id: uuid.UUID, settings: Settings
) -> MailFacts | None:
    """The registration with its attendee and event, or None once it is gone."""
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"""
            SELECT r.id AS registration_id, a.name AS attendee_name,
                   a.email AS attendee_email, e.id AS event_id, e.name AS event_name,
                   e.description AS event_description, e.date AS event_date,
                   e.location AS event_location, e.start_time,
                   {_ZONE} AS timezone, {STARTS_AT} AS starts_at,
                   r.confirmation_sent_at, r.reminder_sent_at, r.ticket_code,
                   r.promoted_at IS NOT NULL AS from_waitlist
              FROM registrations r
              JOIN attendees a ON a.id = r.attendee_id
              JOIN events e ON e.id = r.event_id
             WHERE r.id = %(registration_id)s
            """,
            {"registration_id": registration_id, **_clock_params(settings)},
        )
        row = await cursor.fetchone()
    return MailFacts(**row) if row else None


# One fixed statement per kind of mail: no column name is ever spliced into SQL.
_MARK_SENT = {
    CONFIRMATION: "UPDATE registrations SET confirmation_sent_at = now() WHERE id = %s",
    REMINDER: "UPDATE registrations SET reminder_sent_at = now() WHERE id = %s",
}


async def mark_sent(
    connection: AsyncConnection[Any], registration_id: uuid.UUID, kind: str
) -> None:
    """Record that the mail `kind` (CONFIRMATION or REMINDER) of the registration went out."""
    await connection.execute(_MARK_SENT[kind], (registration_id,))


async def claim_due_reminders(
    connection: AsyncConnection[Any], *, now: datetime, settings: Settings, limit: int
) -> list[tuple[uuid.UUID, datetime]]:
    """Mark up to `limit` registrations whose reminder is due at `now` as queued, and
    return them with their event's start. Runs in the caller's transaction, which
    also defers their jobs: both happen, or neither.

    Due: the event starts within the lead time (for a date-only event: the cron
    hour of the day before has passed) and has not begun; the reminder is not queued
    yet. A registration made after its reminder fell due gets none (its
    confirmation, sent at once, already says when and where), unless the event
    moves afterwards (`reminder_rearmed_at`). `SKIP LOCKED`: concurrent sweeps split
    the rows between them instead of queueing the same one twice.
    """
    # The date window only lets the sweep use the events.date index; the exact
    # test is on the computed instants (zones reach ±14 h, hence the margins).
    first_day = (now - timedelta(days=2)).date()
    last_day = (now + timedelta(hours=settings.reminder_lead_hours, days=2)).date()
    async with connection.cursor() as cursor:
        await cursor.execute(
            f"""
            WITH due AS (
                SELECT r.id, {STARTS_AT} AS starts_at
                  FROM registrations r
                  JOIN events e ON e.id = r.event_id
                 WHERE r.reminder_queued_at IS NULL
                   AND e.date BETWEEN %(first_day)s AND %(last_day)s
                   AND {DUE_AT} <= %(now)s
                   AND {STARTS_AT} > %(now)s
                   AND (r.created_at < {DUE_AT} OR r.reminder_rearmed_at IS NOT NULL)
                 ORDER BY 2
                 LIMIT %(limit)s
                   FOR UPDATE OF r SKIP LOCKED
            )
            UPDATE registrations r SET reminder_queued_at = %(now)s
              FROM due WHERE r.id = due.id
            RETURNING r.id, due.starts_at
            """,
            {
                "now": now,
                "first_day": first_day,
                "last_day": last_day,
                "limit": limit,
                **_clock_params(settings),
            },
        )
        return [(row[0], row[1]) for row in await cursor.fetchall()]


@dataclass(frozen=True)
class FailedMail:
    job_id: int
    task: str
    registration_id: str
    attempts: int
    failed_at: datetime | None
    recipient: str | None
    event: str | None


async def failed_mail(connection: AsyncConnection[Any], *, limit: int = 100) -> list[FailedMail]:
    """Mail jobs that ran out of attempts or failed for good, newest first."""
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            """
            SELECT j.id AS job_id, j.task_name AS task,
                   coalesce(j.args ->> 'registration_id',
                            j.args -> 'notice' ->> 'recipient_id') AS registration_id,
                   j.attempts,
                   (SELECT max(ev.at) FROM procrastinate_events ev
                     WHERE ev.job_id = j.id) AS failed_at,
                   -- A cancellation's event and registration are gone: its job has them.
                   coalesce(a.email, j.args -> 'notice' ->> 'email') AS recipient,
                   coalesce(e.name, j.args -> 'notice' ->> 'event_name') AS event
              FROM procrastinate_jobs j
              LEFT JOIN registrations r ON r.id::text = j.args ->> 'registration_id'
              LEFT JOIN attendees a ON a.id = r.attendee_id
              LEFT JOIN events e ON e.id = r.event_id
             WHERE j.status = 'failed' AND j.task_name = ANY(%(tasks)s)
             ORDER BY failed_at DESC NULLS LAST, j.id DESC
             LIMIT %(limit)s
            """,
            {"tasks": list(MAIL_TASKS), "limit": limit},
        )
        return [FailedMail(**row) for row in await cursor.fetchall()]
