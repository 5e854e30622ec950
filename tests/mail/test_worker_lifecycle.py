"""`eventms worker` as operators run it: SIGTERM mid-batch exits 0 and loses or
doubles nothing; `--metrics-port` serves its mail counters."""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from eventms.loopback import free_port
from tests.support.mail import queue_confirmations, wait_until_mail_queue_empty, worker_env
from tests.support.paths import ROOT
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.slow

SHUTDOWN_TIMEOUT = 5


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "eventms", "worker", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def jobs_by_status(db: psycopg.Connection) -> dict[str, int]:
    rows = db.execute(
        "SELECT status::text, count(*) FROM procrastinate_jobs"
        " WHERE queue_name = 'mail' GROUP BY status"
    ).fetchall()
    return {status: count for status, count in rows}


def wait_for_running(db: psycopg.Connection, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while jobs_by_status(db).get("doing", 0) < count:
        assert time.monotonic() < deadline, "the worker never ran its jobs"
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then its exit code; SIGKILL (and fail) if it outlives its bound."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(SHUTDOWN_TIMEOUT + 20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("the worker did not stop within SHUTDOWN_TIMEOUT") from None


def received(sink: SmtpSink) -> collections.Counter[str]:
    return collections.Counter(m["To"].addresses[0].addr_spec for m in sink.messages)


async def finish_with_new_worker(db, env: dict[str, str], sink: SmtpSink, total: int) -> None:
    process = start_worker(env, "--concurrency", "4")
    try:
        await asyncio.to_thread(sink.wait_for, total, 120)
        await asyncio.to_thread(wait_until_mail_queue_empty, db)
    finally:
        assert stop(process) == 0


async def test_sigterm_mid_batch_finishes_running_jobs_and_exits_0(
    db, database_url, redis_url
) -> None:
    sink = SmtpSink(delay=1.0).start()  # each mail takes a second
    env = worker_env(database_url, redis_url, sink.port, SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT))
    try:
        recipients = await queue_confirmations(db, database_url, 30)
        worker = start_worker(env, "--concurrency", "4")
        await asyncio.to_thread(sink.wait_for, 4, 60)
        await asyncio.to_thread(wait_for_running, db, 1)
        assert await asyncio.to_thread(stop, worker) == 0
        # The jobs it had started were finished, not cut: none is left running.
        assert "doing" not in jobs_by_status(db)
        assert 4 <= len(sink.messages) < len(recipients)  # stopped mid-batch

        await finish_with_new_worker(db, env, sink, len(recipients))
        assert received(sink) == collections.Counter(recipients)  # all, once each
    finally:
        sink.stop()


async def test_sigterm_puts_back_jobs_that_outlive_the_shutdown_timeout(
    db, database_url, redis_url
) -> None:
    sink = SmtpSink(delay=SHUTDOWN_TIMEOUT + 3).start()  # slower than the timeout
    env = worker_env(database_url, redis_url, sink.port, SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT))
    try:
        recipients = await queue_confirmations(db, database_url, 6)
        # A job's only attempt: being cut by a shutdown must not count as failing.
        worker = start_worker({**env, "MAIL_MAX_ATTEMPTS": "1"}, "--concurrency", "2")
        await asyncio.to_thread(wait_for_running, db, 2)
        assert await asyncio.to_thread(stop, worker) == 0
        # Cut after SHUTDOWN_TIMEOUT: both back in the queue, none running or failed.
        assert jobs_by_status(db) == {"todo": len(recipients)}
        attempts = db.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE attempts = 1"
        ).fetchone()
        assert attempts == (2,)

        sink.delay = 0
        await finish_with_new_worker(db, env, sink, len(recipients))
        mails = received(sink)
        assert set(mails) == set(recipients)  # every one arrived
        # Only a mail cut at the timeout can arrive twice (the server may have
        # finished taking it): at most one per job running then.
        duplicates = sum(n - 1 for n in mails.values())
        assert duplicates <= 2
        print(f"\nSIGTERM, 2 jobs cut at SHUTDOWN_TIMEOUT: {duplicates} duplicate(s)")
    finally:
        sink.stop()


async def test_worker_serves_its_mail_counters(db, database_url, redis_url) -> None:
    sink = SmtpSink().start()
    port = free_port()
    env = worker_env(database_url, redis_url, sink.port, APP_HOST="127.0.0.1")
    try:
        recipients = await queue_confirmations(db, database_url, 5)
        worker = start_worker(env, "--metrics-port", str(port))
        try:
            await asyncio.to_thread(sink.wait_for, len(recipients), 60)
            await asyncio.to_thread(wait_until_mail_queue_empty, db)
            # Counted just after the row records the mail: poll until it shows.
            sent = 'eventms_mails_sent_total{kind="confirmation"} 5.0'
            deadline = time.monotonic() + 30
            async with httpx.AsyncClient() as client:
                while True:
                    text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                    if sent in text or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.1)
            assert sent in text
            assert "eventms_mails_failed_total" in text
        finally:
            assert stop(worker) == 0
    finally:
        sink.stop()
