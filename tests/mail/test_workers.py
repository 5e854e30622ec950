"""Worker processes: many of them never double a mail; a killed one loses none."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.mail import (
    defer_confirmations,
    seed_registrations,
    sweep,
    wait_until_mail_queue_empty,
)
from tests.support.smtp import SmtpSink
from tests.support.workers import Workers

pytestmark = pytest.mark.slow


async def test_two_workers_send_1000_reminders_once_each(
    db, database_url, sink: SmtpSink, mail_settings, workers: Workers
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now + timedelta(hours=30)
    seed_registrations(db, events=10, per_event=100, start=start)
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
    seed_registrations(db, events=1, per_event=200, start=datetime.now(UTC) + timedelta(days=30))
    ids = [str(row[0]) for row in db.execute("SELECT id FROM registrations").fetchall()]
    await defer_confirmations(database_url, ids)
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
