"""Mail test fixtures: a real SMTP server and settings pointing at it (the job tables
are emptied before every test by tests/conftest.py; the helpers, `drain` among them,
are in tests/support/mail.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eventms.config import Settings
from tests.support.mail import settings_for
from tests.support.smtp import SmtpSink
from tests.support.workers import Workers


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def mail_settings(settings: Settings, sink: SmtpSink) -> Settings:
    return settings_for(settings, sink.port)


@pytest.fixture
def workers(database_url: str, redis_url: str, sink: SmtpSink) -> Iterator[Workers]:
    """`eventms worker` processes a test starts; stopped (or killed) at its end."""
    group = Workers(database_url, redis_url, sink.port)
    yield group
    group.stop_all()
