"""Mail test fixtures: a real SMTP server, settings pointing at it, and empty job
tables (the helpers, `drain` among them, are in tests/support/mail.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eventms.config import Settings
from tests.support.databases import truncate
from tests.support.mail import PROCRASTINATE_TABLES, settings_for
from tests.support.smtp import SmtpSink


@pytest.fixture(autouse=True)
def clean_jobs(database_url: str) -> None:
    truncate(database_url, *PROCRASTINATE_TABLES)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def mail_settings(settings: Settings, sink: SmtpSink) -> Settings:
    return settings_for(settings, sink.port)
