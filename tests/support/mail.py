"""Mail test support: settings and environments pointing at a test SMTP server, a
worker that runs what is due and stops, and registrations with their jobs queued."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from procrastinate.types import JSONDict

from eventms.config import Settings
from eventms.notifications.jobs import MAIL_QUEUE, queue_due_reminders, send_confirmation
from eventms.notifications.worker import run_worker
from tests.support.databases import libpq
from tests.support.paths import ROOT

PROCRASTINATE_TABLES = (
    "procrastinate_jobs",
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_workers",
)


def settings_for(settings: Settings, port: int, **changes: Any) -> Settings:
    """Test settings with mail to 127.0.0.1:`port`, short retries and heartbeats."""
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_timeout": 5,
            "mail_retry_base_seconds": 1,
            "mail_retry_max_seconds": 1,
            "worker_heartbeat_seconds": 0.5,
            "worker_stalled_seconds": 2,
            **changes,
        }
    )


async def drain(settings: Settings, concurrency: int = 4) -> None:
    """Run the mail jobs that are due now, in this process, then return."""
    await run_worker(
        settings,
        concurrency=concurrency,
        wait=False,
        queues=[MAIL_QUEUE],
        install_signal_handlers=False,
    )


def worker_env(database_url: str, redis_url: str, smtp_port: int, **extra: str) -> dict[str, str]:
    """Environment for an `eventms` child process of the tests: every part named, so
    that it starts no embedded engine (one left behind by a SIGKILL would stay up)."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "APP_ENV": "test",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "MAIL_RETRY_BASE_SECONDS": "1",
        "MAIL_RETRY_MAX_SECONDS": "1",
        "WORKER_HEARTBEAT_SECONDS": "0.5",
        "WORKER_STALLED_SECONDS": "2",
        "DATA_DIR": str(ROOT / "var" / "test-worker"),
        **extra,
    }


def seed_registrations(
    db: psycopg.Connection, *, events: int, per_event: int, start: datetime
) -> None:
    """`events` events starting at `start`, each with `per_event` registrations."""
    db.execute(
        """
        INSERT INTO events (id, name, date, start_time, timezone, location, max_attendees)
        SELECT gen_random_uuid(), 'Event ' || n, %(day)s, %(at)s, 'UTC', 'Room ' || n, %(per)s
          FROM generate_series(1, %(events)s) n
        """,
        {"day": start.date(), "at": start.time(), "per": per_event, "events": events},
    )
    db.execute(
        """
        INSERT INTO attendees (id, name, email)
        SELECT gen_random_uuid(), 'Person ' || n, 'p' || n || '@example.com'
          FROM generate_series(1, %(n)s) n
        """,
        {"n": events * per_event},
    )
    db.execute(
        """
        INSERT INTO registrations (id, event_id, attendee_id)
        SELECT gen_random_uuid(), e.id, a.id
          FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM events) e
          JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM attendees) a
            ON a.i / %(per)s = e.i
        """,
        {"per": per_event},
    )


async def defer_confirmations(database_url: str, registration_ids: list[str]) -> None:
    """One confirmation job per registration, deferred in one transaction."""
    jobs: list[JSONDict] = [{"registration_id": i} for i in registration_ids]
    async with await psycopg.AsyncConnection.connect(libpq(database_url)) as connection:
        async with connection.transaction():
            await send_confirmation.configure(connection=connection).batch_defer_async(*jobs)


async def queue_confirmations(db: psycopg.Connection, database_url: str, count: int) -> list[str]:
    """`count` registrations a month ahead with a confirmation job each; return their
    recipients."""
    seed_registrations(db, events=1, per_event=count, start=datetime.now(UTC) + timedelta(days=30))
    ids = [str(row[0]) for row in db.execute("SELECT id FROM registrations").fetchall()]
    await defer_confirmations(database_url, ids)
    return [row[0] for row in db.execute("SELECT email FROM attendees").fetchall()]


async def sweep(database_url: str, settings: Settings, now: datetime) -> int:
    """One reminder sweep as the periodic task runs it, at the simulated time `now`."""
    async with await psycopg.AsyncConnection.connect(
        libpq(database_url), autocommit=True
    ) as connection:
        return await queue_due_reminders(connection, settings=settings, now=now)


def wait_until_mail_queue_empty(db: psycopg.Connection, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = db.execute(
            "SELECT count(*) FROM procrastinate_jobs"
            " WHERE queue_name = 'mail' AND status IN ('todo', 'doing')"
        ).fetchone()
        if left == (0,):
            return
        time.sleep(0.2)
    raise AssertionError("mail jobs still queued")


RETRY_WAIT = 1.2  # the tests' retry backoff is 1 s


def job_state(db: psycopg.Connection) -> tuple[str, int]:
    row = db.execute(
        "SELECT status::text, attempts FROM procrastinate_jobs"
        " WHERE task_name = 'send_confirmation'"
    ).fetchone()
    assert row is not None
    return row[0], row[1]
