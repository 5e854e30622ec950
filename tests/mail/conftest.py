"""Mail test fixtures: a real SMTP server, settings pointing at it, empty job tables,
and `drain` (a worker that runs every due mail job, then stops)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from eventms.config import Settings
from eventms.notifications.jobs import MAIL_QUEUE
from eventms.notifications.worker import run_worker
from tests.conftest import ROOT, _libpq
from tests.mail.smtp import SmtpSink

PROCRASTINATE_TABLES = (
    "procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers, procrastinate_workers"
)


@pytest.fixture(autouse=True)
def clean_jobs(database_url: str) -> None:
    with psycopg.connect(_libpq(database_url), autocommit=True) as connection:
        connection.execute(f"TRUNCATE {PROCRASTINATE_TABLES} CASCADE")


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


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


@pytest.fixture
def mail_settings(settings: Settings, sink: SmtpSink) -> Settings:
    return settings_for(settings, sink.port)


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
