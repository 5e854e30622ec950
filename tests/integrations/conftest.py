"""Integration test fixtures: empty idempotency, webhook and job tables; a loopback
receiver; a worker that runs the webhook jobs until a condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from eventms.config import Settings
from eventms.notifications.worker import run_worker
from eventms.webhooks.jobs import WEBHOOK_QUEUE
from tests.integrations.receiver import Receiver
from tests.support.databases import libpq as _libpq

TABLES = (
    "idempotency_keys, webhook_endpoints, webhook_deliveries, procrastinate_jobs,"
    " procrastinate_events, procrastinate_periodic_defers, procrastinate_workers"
)


@pytest.fixture(autouse=True)
def clean_integrations(database_url: str) -> None:
    with psycopg.connect(_libpq(database_url), autocommit=True) as connection:
        connection.execute(f"TRUNCATE {TABLES} CASCADE")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    """Short retries, so that a retry happens within a test."""
    return settings.model_copy(
        update={
            "webhook_retry_base_seconds": 0.3,
            "webhook_retry_max_seconds": 1,
            "webhook_timeout_seconds": 2,
            "worker_heartbeat_seconds": 0.5,
            "worker_stalled_seconds": 2,
            "shutdown_timeout": 3,
        }
    )


async def drain_webhooks(settings: Settings, concurrency: int = 4) -> None:
    """Run the webhook jobs due now, in this process, then return."""
    await run_worker(
        settings,
        concurrency=concurrency,
        wait=False,
        queues=[WEBHOOK_QUEUE],
        install_signal_handlers=False,
    )


async def work_until(
    settings: Settings, done: Callable[[], bool], within: float = 30, concurrency: int = 4
) -> None:
    """Run a webhook worker until `done()` holds (or fail after `within` s)."""
    worker = asyncio.create_task(
        run_worker(
            settings,
            concurrency=concurrency,
            queues=[WEBHOOK_QUEUE],
            install_signal_handlers=False,
        )
    )
    deadline = time.monotonic() + within
    try:
        while not done():
            assert time.monotonic() < deadline, "the condition did not hold in time"
            assert not worker.done(), worker.exception() if worker.done() else None
            await asyncio.sleep(0.1)
    finally:
        worker.cancel()
        try:
            await worker
        except asyncio.CancelledError:
            pass
