"""Notices when an event changes: who hears of a move or a cancellation, and the
delivery of those mails (their tasks are in `jobs.py`, their mails in `notice_mail.py`).

A move (a change of date, start time, time zone or location) raises the event's
`calendar_sequence` in its own `UPDATE` and, in the same transaction, records on each
registration what the attendee was told before (`notice_told`, unless a pending
notice already holds it) and defers one `send_event_updated` job per registration.
The job reads the current state: if the attendee's `notice_sequence` has caught up
with the event's, another job of a quick succession of moves already told them the
current state, and it sends nothing; otherwise it sends "told → now" once and records
both. So two quick moves make one or two mails per attendee, the last showing the
final state, and none is lost: every move's jobs commit with it.

A deletion reads the registered and waiting attendees under the event row lock and
defers one `send_event_canceled` job each, carrying all it says (the rows are gone
after the commit).
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.config import Settings
from eventms.notifications.mailer import Mailer
from eventms.notifications.notice_mail import (
    CancelNotice,
    Change,
    UpdateFacts,
    Whereabouts,
    build_cancel_message,
    build_update_message,
    what_changed,
)
from eventms.observability import metrics
from eventms.selfservice.tokens import ManageTokens, manage_url

log = logging.getLogger("eventms.mail")

# The fields whose change moves an event (and re-arms its reminders, migration 0002).
MOVE_FIELDS = ("date", "start_time", "timezone", "location")


class _HasWhereabouts(Protocol):
    date: Any
    start_time: Any
    timezone: Any
    location: Any


def move_of(current: _HasWhereabouts, changes: dict[str, Any]) -> Whereabouts | None:
    """Where and when the event was, if `changes` (column: value) move it; else None."""
    if not any(f in changes and changes[f] != getattr(current, f) for f in MOVE_FIELDS):
        return None
    return Whereabouts(
        date=current.date,
        start_time=current.start_time,
        timezone=current.timezone,
        location=current.location,
    )


# --- the API's side: in the write's transaction ---------------------------------------

_RECORD_MOVE = text(
    """
    UPDATE registrations SET notice_told = coalesce(notice_told, CAST(:told AS jsonb))
     WHERE event_id = :event_id
    RETURNING id
    """
)


async def record_move(
    session: AsyncSession, *, event_id: uuid.UUID, before: Whereabouts
) -> list[uuid.UUID]:
    """Note on each registration of the moved event what its attendee knew (unless a
    notice not yet sent already holds it); return the registrations to notify."""
    rows = await session.execute(
        _RECORD_MOVE, {"event_id": event_id, "told": json.dumps(before.to_json())}
    )
    return list(rows.scalars())


async def cancellation_notices(session: AsyncSession, *, event_id: uuid.UUID) -> list[CancelNotice]:
    """One notice per registered and waiting attendee of the event about to be deleted.

    The event row is locked first: a registration or a join waits for the lock (their
    seat and waiting-list counters update the row), so nobody slips in between this
    read and the delete without a notice.
    """
    event = (
        await session.execute(
            text(
                "SELECT name, date, start_time, timezone, location, calendar_sequence"
                " FROM events WHERE id = :id FOR UPDATE"
            ),
            {"id": event_id},
        )
    ).one_or_none()
    if event is None:
        return []
    whereabouts = Whereabouts(
        date=event.date,
        start_time=event.start_time,
        timezone=event.timezone,
        location=event.location,
    )
    recipients = await session.execute(
        text(
            """
            SELECT r.id, false AS waiting, a.name, a.email
              FROM registrations r JOIN attendees a ON a.id = r.attendee_id
             WHERE r.event_id = :id
            UNION ALL
            SELECT w.id, true AS waiting, a.name, a.email
              FROM waitlist_entries w JOIN attendees a ON a.id = w.attendee_id
             WHERE w.event_id = :id
            """
        ),
        {"id": event_id},
    )
    return [
        CancelNotice(
            recipient_id=row.id,
            waiting=row.waiting,
            attendee_name=row.name,
            attendee_email=row.email,
            event_id=event_id,
            event_name=event.name,
            whereabouts=whereabouts,
            calendar_sequence=event.calendar_sequence + 1,
        )
        for row in recipients
    ]


# --- the worker's side ----------------------------------------------------------------


async def load_update_facts(
    connection: AsyncConnection[Any], registration_id: uuid.UUID
) -> UpdateFacts | None:
    """The registration with its attendee, its event as it is now and what it was
    told; None once it is gone."""
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            """
            SELECT r.id, a.name AS attendee_name, a.email AS attendee_email,
                   e.id AS event_id, e.name AS event_name, e.date, e.start_time,
                   e.timezone, e.location, e.calendar_sequence, r.notice_sequence,
                   r.notice_told
              FROM registrations r
              JOIN attendees a ON a.id = r.attendee_id
              JOIN events e ON e.id = r.event_id
             WHERE r.id = %s
            """,
            (registration_id,),
        )
        row = await cursor.fetchone()
    if row is None:
        return None
    told = row["notice_told"]
    return UpdateFacts(
        registration_id=row["id"],
        attendee_name=row["attendee_name"],
        attendee_email=row["attendee_email"],
        event_id=row["event_id"],
        event_name=row["event_name"],
        now=Whereabouts(
            date=row["date"],
            start_time=row["start_time"],
            timezone=row["timezone"],
            location=row["location"],
        ),
        calendar_sequence=row["calendar_sequence"],
        notice_sequence=row["notice_sequence"],
        told=Whereabouts.from_json(told) if told is not None else None,
    )


async def mark_update_sent(
    connection: AsyncConnection[Any],
    registration_id: uuid.UUID,
    *,
    sequence: int,
    told: Whereabouts,
) -> None:
    """Record that the attendee now knows the event as `told`, at `sequence` (never
    going back: a slower job that read an older state leaves a newer record alone)."""
    await connection.execute(
        """
        UPDATE registrations SET notice_sequence = %(sequence)s, notice_told = %(told)s
         WHERE id = %(id)s AND notice_sequence < %(sequence)s
        """,
        {"id": registration_id, "sequence": sequence, "told": Jsonb(told.to_json())},
    )


async def deliver_update(
    registration_id: uuid.UUID,
    *,
    pool: AsyncConnectionPool[Any],
    mailer: Mailer,
    settings: Settings,
    tokens: ManageTokens,
) -> None:
    """Tell the attendee what changed since they were last told, unless they know."""
    async with pool.connection() as connection:
        facts = await load_update_facts(connection, registration_id)
    if facts is None:
        log.info("registration %s is gone: no update notice", registration_id)
        return
    if facts.notice_sequence >= facts.calendar_sequence:
        return  # a job of a later move (or a retry) told them the current state already
    zone = settings.default_event_timezone
    changes: list[Change] = []
    if facts.told is not None:
        changes = what_changed(facts.told, facts.now, default_zone=zone)
    if facts.told is None or changes:
        message = build_update_message(
            facts,
            changes,
            sender=settings.smtp_mail_from,
            now=datetime.now(UTC),
            manage_url=manage_url(settings.app_url, tokens.token_for(registration_id)),
            default_zone=zone,
        )
        await mailer.send(message)
        metrics.mail_sent("event_updated")
        log.info(
            "event update sent to %s (registration %s, sequence %d)",
            facts.attendee_email,
            registration_id,
            facts.calendar_sequence,
        )
    else:
        log.info("event of registration %s is back where it was: no update", registration_id)
    async with pool.connection() as connection:
        await mark_update_sent(
            connection, registration_id, sequence=facts.calendar_sequence, told=facts.now
        )


async def deliver_cancellation(notice: CancelNotice, *, mailer: Mailer, settings: Settings) -> None:
    """Send the `Event Canceled` mail: all it needs is in the job; the job's end is its
    record (done jobs are deleted; a worker killed before that leaves it to retry)."""
    message = build_cancel_message(
        notice,
        sender=settings.smtp_mail_from,
        now=datetime.now(UTC),
        default_zone=settings.default_event_timezone,
    )
    await mailer.send(message)
    metrics.mail_sent("event_canceled")
    log.info("event cancellation sent to %s (%s)", notice.attendee_email, notice.recipient_id)
