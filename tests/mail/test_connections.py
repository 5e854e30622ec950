"""SMTP connections are kept between mails, and replaced when the server drops them."""

from __future__ import annotations

import collections
import math
from datetime import UTC, datetime, timedelta

import psycopg
from prometheus_client import REGISTRY

from eventms.config import Settings
from eventms.notifications.jobs import send_confirmation
from tests.conftest import _libpq
from tests.mail.conftest import drain, settings_for
from tests.mail.smtp import SmtpSink
from tests.mail.test_workers import seed


async def queue_confirmations(db: psycopg.Connection, database_url: str, count: int) -> list[str]:
    """`count` registrations with a confirmation job each; return their recipients."""
    seed(db, events=1, per_event=count, start=datetime.now(UTC) + timedelta(days=30))
    ids = [str(row[0]) for row in db.execute("SELECT id FROM registrations").fetchall()]
    async with await psycopg.AsyncConnection.connect(_libpq(database_url)) as connection:
        async with connection.transaction():
            await send_confirmation.configure(connection=connection).batch_defer_async(
                *({"registration_id": i} for i in ids)
            )
    return [row[0] for row in db.execute("SELECT email FROM attendees").fetchall()]


def retried() -> float:
    return REGISTRY.get_sample_value("eventms_mails_retried_total", {"kind": "confirmation"}) or 0


def mail_jobs_left(db: psycopg.Connection) -> int:
    row = db.execute("SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'mail'").fetchone()
    assert row is not None
    return int(row[0])


async def test_one_connection_per_running_job(db, database_url, settings: Settings) -> None:
    sink = SmtpSink().start()
    try:
        recipients = await queue_confirmations(db, database_url, 20)
        await drain(settings_for(settings, sink.port), concurrency=4)
        received = collections.Counter(m["To"].addresses[0].addr_spec for m in sink.messages)
        assert received == collections.Counter(recipients)  # each once
        assert 1 <= sink.connections <= 4  # not one per mail
    finally:
        sink.stop()


async def test_server_closing_connections_loses_no_mail_and_costs_no_retry(
    db, database_url, settings: Settings
) -> None:
    sink = SmtpSink(close_after=3).start()  # 421 and hang up after 3 mails
    try:
        recipients = await queue_confirmations(db, database_url, 10)
        retried_before = retried()
        await drain(settings_for(settings, sink.port), concurrency=1)
        received = collections.Counter(m["To"].addresses[0].addr_spec for m in sink.messages)
        assert received == collections.Counter(recipients)  # none lost, none doubled
        # One job at a time: each connection carried 3 mails, and the mail that met
        # the 421 went out at once on a new connection, not as a retried job.
        assert sink.connections == math.ceil(10 / 3)
        assert retried() == retried_before
        assert mail_jobs_left(db) == 0
    finally:
        sink.stop()
