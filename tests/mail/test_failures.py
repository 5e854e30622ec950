"""SMTP failures: temporary ones are retried until the mail arrives, once; permanent
ones and exhausted retries end as failed jobs an operator can list."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest

from eventms.config import Settings
from eventms.loopback import free_port
from eventms.notifications.worker import list_failed_mail
from tests.support.api import make_attendee, make_event, register
from tests.support.mail import RETRY_WAIT, drain, job_state, settings_for, worker_env
from tests.support.paths import ROOT
from tests.support.smtp import SmtpSink


async def registered(client, **attendee) -> str:
    event = await make_event(client)
    person = await make_attendee(client, **attendee)
    response = await register(client, event["id"], person["id"])
    assert response.status_code == 201
    return response.json()["result"]["id"]


async def test_smtp_down_then_back_delivers_once(client, db, settings: Settings) -> None:
    port = free_port()  # nothing listens here yet
    mail_settings = settings_for(settings, port)
    await registered(client)
    await drain(mail_settings)
    assert job_state(db) == ("todo", 1)  # refused connection: scheduled again

    sink = SmtpSink(port).start()
    try:
        await asyncio.sleep(RETRY_WAIT)
        await drain(mail_settings)
        await asyncio.sleep(RETRY_WAIT)
        await drain(mail_settings)
        assert len(sink.messages) == 1
        assert sink.messages[0]["Subject"] == "Registration Confirmation"
    finally:
        sink.stop()
    assert db.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'mail'"
    ).fetchone() == (0,)


async def test_4xx_answer_is_retried(client, db, sink: SmtpSink, mail_settings) -> None:
    sink.refuse("451 4.3.0 Try again later", times=1)
    await registered(client)
    await drain(mail_settings)
    assert sink.messages == []
    assert job_state(db) == ("todo", 1)
    await asyncio.sleep(RETRY_WAIT)
    await drain(mail_settings)
    assert len(sink.messages) == 1


async def test_5xx_for_the_address_fails_at_once(
    client,
    db,
    sink: SmtpSink,
    mail_settings,
    caplog: pytest.LogCaptureFixture,
    database_url,
    redis_url,
) -> None:
    sink.refuse("550 5.1.1 No such user")
    registration_id = await registered(client, email="nobody@example.com")
    with caplog.at_level(logging.ERROR, logger="eventms.mail"):
        await drain(mail_settings)
    await asyncio.sleep(RETRY_WAIT)
    await drain(mail_settings)
    assert sink.messages == []
    assert job_state(db) == ("failed", 1)  # one attempt, no retry
    assert any("failed for good" in r.getMessage() for r in caplog.records)

    [failed] = await list_failed_mail(mail_settings)
    assert failed.registration_id == registration_id
    assert failed.recipient == "nobody@example.com"
    assert failed.task == "send_confirmation"

    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "eventms", "mail", "failed"],
        env=worker_env(database_url, redis_url, sink.port),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "nobody@example.com" in shown.stdout
    assert registration_id in shown.stdout


async def test_out_of_attempts_is_recorded_failed(
    client, db, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    dead = settings_for(settings, free_port(), mail_max_attempts=2)
    await registered(client)
    with caplog.at_level(logging.WARNING, logger="eventms.mail"):
        await drain(dead)
        await asyncio.sleep(RETRY_WAIT)
        await drain(dead)
    assert job_state(db) == ("failed", 2)
    assert any("failed after 2 attempts" in r.getMessage() for r in caplog.records)
    assert len(await list_failed_mail(dead)) == 1
