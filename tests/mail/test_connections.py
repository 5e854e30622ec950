"""SMTP connections are kept between mails, and replaced when the server drops them."""

from __future__ import annotations

import collections
import math

import psycopg
from prometheus_client import REGISTRY

from eventms.config import Settings
from tests.support.mail import drain, queue_confirmations, settings_for
from tests.support.smtp import SmtpSink


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
