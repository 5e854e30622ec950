"""Fault tests: `eventms serve` / `eventms worker` under load while the test stops
and starts the real engines under them."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from eventms.loopback import free_port
from eventms.migrations import upgrade
from tests.faults.engines import OwnPostgres, OwnRedis
from tests.support.paths import ROOT
from tests.support.smtp import SmtpSink


@pytest.fixture(scope="module")
def own_pg_server() -> Iterator[OwnPostgres]:
    server = OwnPostgres(ROOT / "var" / f"test-faults-pg-{os.getpid()}")
    server.start()
    upgrade(server.url)
    yield server
    server.remove()


@pytest.fixture
def own_pg(own_pg_server: OwnPostgres) -> OwnPostgres:
    """The module's own PostgreSQL, running and with empty tables."""
    if not own_pg_server.embedded.server:
        own_pg_server.start()
    own_pg_server.clean()
    return own_pg_server


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis(ROOT / "var" / f"test-faults-redis-{os.getpid()}", free_port())
    server.start()
    yield server
    server.remove()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()
