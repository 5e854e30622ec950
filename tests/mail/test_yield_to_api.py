"""The in-process mail worker yields to the API (`http.activity`): a mail waits while
its process answers requests, WORKER_YIELD_SECONDS at most."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from eventms.config import Settings
from eventms.http.activity import Activity
from eventms.notifications.jobs import MAIL_QUEUE
from eventms.notifications.worker import run_worker
from tests.support.mail import queue_confirmations
from tests.support.smtp import SmtpSink


@contextlib.asynccontextmanager
async def worker_beside(settings: Settings, activity: Activity) -> AsyncIterator[None]:
    task = asyncio.create_task(
        run_worker(
            settings, queues=[MAIL_QUEUE], install_signal_handlers=False, activity=activity
        )
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_mail_waits_until_no_request_is_in_flight(
    db: psycopg.Connection, database_url: str, sink: SmtpSink, mail_settings: Settings
) -> None:
    await queue_confirmations(db, database_url, 2)
    activity = Activity()
    activity.in_flight = 3
    settings = mail_settings.model_copy(update={"worker_yield_seconds": 60})
    async with worker_beside(settings, activity):
        await asyncio.sleep(1.5)
        assert sink.messages == []  # held while requests are answered
        activity.in_flight = 0
        assert len(await asyncio.to_thread(sink.wait_for, 2, 10)) == 2


@pytest.mark.parametrize("yield_seconds", [1, 0])
async def test_under_endless_requests_a_mail_waits_worker_yield_seconds(
    db: psycopg.Connection,
    database_url: str,
    sink: SmtpSink,
    mail_settings: Settings,
    yield_seconds: float,
) -> None:
    await queue_confirmations(db, database_url, 1)
    activity = Activity()
    activity.in_flight = 1  # never falls
    settings = mail_settings.model_copy(update={"worker_yield_seconds": yield_seconds})
    started = time.monotonic()
    async with worker_beside(settings, activity):
        assert len(await asyncio.to_thread(sink.wait_for, 1, 10)) == 1
    assert time.monotonic() - started >= yield_seconds  # 0: the setting turns it off
