"""A worker killed in the middle of a batch of notices loses none of them."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.mail import seed_registrations, wait_until_mail_queue_empty
from tests.support.smtp import SmtpSink
from tests.support.workers import Workers

pytestmark = pytest.mark.slow

ATTENDEES = 200


@pytest.mark.parametrize(
    ("change", "subject"),
    [("move", "Event Updated"), ("delete", "Event Canceled")],
)
async def test_worker_killed_mid_batch_loses_no_notice(
    client, db, sink: SmtpSink, workers: Workers, change: str, subject: str
) -> None:
    seed_registrations(
        db, events=1, per_event=ATTENDEES, start=datetime.now(UTC) + timedelta(days=30)
    )
    [(event_id,)] = db.execute("SELECT id FROM events").fetchall()
    emails = {row[0] for row in db.execute("SELECT email FROM attendees").fetchall()}
    if change == "move":
        response = await client.patch(f"/event/{event_id}", json={"location": "Elsewhere"})
    else:
        response = await client.delete(f"/event/{event_id}")
    assert response.status_code == 200
    concurrency = 4
    victim = workers.start(concurrency=concurrency)
    await asyncio.to_thread(sink.wait_for, 40, 60)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    at_kill = len(sink.messages)
    assert 0 < at_kill < ATTENDEES  # killed mid-batch

    await asyncio.sleep(2.5)  # its heartbeat goes stale (WORKER_STALLED_SECONDS=2)
    workers.start(concurrency=concurrency)
    await asyncio.to_thread(sink.wait_for, ATTENDEES, 120)
    await asyncio.to_thread(wait_until_mail_queue_empty, db)
    workers.stop_all()

    assert {m["Subject"] for m in sink.messages} == {subject}
    received = collections.Counter(m["To"].addresses[0].addr_spec for m in sink.messages)
    assert set(received) == emails  # every notice of the batch arrived
    duplicates = sum(n - 1 for n in received.values())
    # Only a job in flight at the kill can be sent twice: at most one per slot.
    assert duplicates <= concurrency
    print(f"\n{change}: SIGKILL after {at_kill} of {ATTENDEES} notices: {duplicates} duplicate(s)")
