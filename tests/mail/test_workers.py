"""Worker processes: many of them never double a mail; a killed one loses none."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from eventms.notifications.jobs import send_confirmation
from tests.conftest import ROOT, _libpq
from tests.mail.conftest import worker_env
from tests.mail.smtp import SmtpSink
from tests.mail.test_reminders import sweep

pytestmark = pytest.mark.slow


class Workers:
    """`eventms worker` child processes, stopped (or killed) by the test."""

    def __init__(self, database_url: str, redis_url: str, smtp_port: int) -> None:
        self.env = worker_env(database_url, redis_url, smtp_port)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, concurrency: int) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "eventms", "worker", "--concurrency", str(concurrency)],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(database_url: str, redis_url: str, sink: SmtpSink) -> Iterator[Workers]:
    group = Workers(database_url, redis_url, sink.port)
    yield group
    group.stop_all()


def seed(db: psycopg.Connection, *, events: int, per_event: int, start: datetime) -> None:
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


async def test_two_workers_send_1000_reminders_once_each(
    db, database_url, sink: SmtpSink, mail_settings, workers: Workers
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now + timedelta(hours=30)
    seed(db, events=10, per_event=100, start=start)
    # The simulated clock stands the day before; two sweeps race for the same rows.
    simulated = start - timedelta(hours=20)
    counts = await asyncio.gather(
        *(sweep(database_url, mail_settings, simulated) for _ in range(2))
    )
    assert sum(counts) == 1000
    workers.start(concurrency=4)
    workers.start(concurrency=4)
    await asyncio.to_thread(sink.wait_for, 1000, 180)
    await asyncio.to_thread(wait_until_mail_queue_empty, db)
    workers.stop_all()

    recipients = collections.Counter(m["To"].addresses[0].addr_spec for m in sink.messages)
    assert len(recipients) == 1000  # none missed
    assert set(recipients.values()) == {1}  # none doubled
    assert {m["Subject"] for m in sink.messages} == {"Event Reminder"}
    assert db.execute(
        "SELECT count(*) FROM registrations WHERE reminder_sent_at IS NOT NULL"
    ).fetchone() == (1000,)


async def test_worker_killed_mid_batch_loses_nothing(
    db, database_url, sink: SmtpSink, workers: Workers
) -> None:
    seed(db, events=1, per_event=200, start=datetime.now(UTC) + timedelta(days=30))
    ids = [str(row[0]) for row in db.execute("SELECT id FROM registrations").fetchall()]
    async with await psycopg.AsyncConnection.connect(_libpq(database_url)) as connection:
        async with connection.transaction():
            await send_confirmation.configure(connection=connection).batch_defer_async(
                *({"registration_id": i} for i in ids)
            )
    concurrency = 4
    victim = workers.start(concurrency=concurrency)
    await asyncio.to_thread(sink.wait_for, 40, 60)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    at_kill = len(sink.messages)
    assert 0 < at_kill < len(ids)  # killed mid-batch

    await asyncio.sleep(2.5)  # its heartbeat goes stale (WORKER_STALLED_SECONDS=2)
    workers.start(concurrency=concurrency)
    await asyncio.to_thread(sink.wait_for, len(ids), 120)
    await asyncio.to_thread(wait_until_mail_queue_empty, db)
    workers.stop_all()

    received = collections.Counter(m["To"].addresses[0].addr_spec for m in sink.messages)
    assert len(received) == len(ids)  # every mail of the batch arrived
    duplicates = sum(n - 1 for n in received.values())
    # Only a job in flight at the kill can be sent twice: at most one per slot.
    assert duplicates <= concurrency
    print(f"\nSIGKILL after {at_kill} of {len(ids)} mails: {duplicates} duplicate(s)")
