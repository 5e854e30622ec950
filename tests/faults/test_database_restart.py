"""PostgreSQL stopped and started under load (its own embedded server, `pg_ctl stop`
in fast mode: every connection cut): the API answers 503 meanwhile, the in-process
and dedicated mail workers reconnect and send on; a worker that cannot recover
says so."""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from procrastinate.types import JSONValue

from eventms.notifications.jobs import send_confirmation
from tests.faults.engines import OwnPostgres
from tests.faults.load import (
    CONCURRENCY,
    assert_survived,
    log_lines,
    mail_env,
    mail_queue,
    run_burst,
    wait_for,
)
from tests.support.live_server import LiveServer
from tests.support.mail import seed_registrations as seed
from tests.support.mail import worker_env
from tests.support.paths import ROOT
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.slow


async def test_serve_rides_out_a_database_restart(own_pg: OwnPostgres, redis_url, sink):
    server = LiveServer(own_pg.url, redis_url, env={"WORKER_IN_PROCESS": "true", **mail_env(sink)})
    try:
        during: list[httpx.Response] = []

        async def restart() -> None:
            await asyncio.to_thread(own_pg.stop)
            async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
                await asyncio.sleep(0.5)
                during.append(await http.get("/ready"))
                during.append(await http.get("/health"))
            await asyncio.sleep(1.5)
            await asyncio.to_thread(own_pg.start)

        burst = await run_burst(server.base, seconds=8, fault_after=2.5, fault=restart)
        assert burst.statuses[503] > 0, burst.statuses  # the clients met the outage
        assert during[0].status_code == 503
        assert "database" in during[0].json()["down"]
        assert during[1].status_code == 200  # liveness is not readiness
        with own_pg.connect() as db:
            received = await assert_survived(burst, db, sink, server.base, in_flight=CONCURRENCY)
        output = server.output()
        # Told once each way, by the API and by the worker, not once per request.
        api = log_lines(output, "eventms.outage")
        assert len(api) == 2, api
        assert "database unavailable" in api[0] and "database available again" in api[1]
        worker = [line for line in output.splitlines() if "database (mail worker)" in line]
        assert len(worker) == 2, worker
        assert " 500 " not in output
        print(
            f"\n{burst.requests} requests: {dict(burst.statuses)};"
            f" {len(burst.registered)} registrations, {sum(received.values())} confirmations"
        )
    finally:
        server.stop()


async def defer_confirmations(pg: OwnPostgres, ids: list[str]) -> None:
    async with await psycopg.AsyncConnection.connect(pg.libpq) as connection:
        async with connection.transaction():
            jobs: list[dict[str, JSONValue]] = [{"registration_id": i} for i in ids]
            await send_confirmation.configure(connection=connection).batch_defer_async(*jobs)


def start_worker(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], object]:
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "eventms", "worker", "--concurrency", str(CONCURRENCY)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    return process, log


def read(log: object) -> str:
    log.seek(0)  # type: ignore[attr-defined]
    return log.read().decode(errors="replace")  # type: ignore[attr-defined]


async def test_dedicated_worker_rides_out_a_database_restart(
    own_pg: OwnPostgres, redis_url, sink: SmtpSink
):
    # A few seconds of sending: the restart falls mid-batch.
    with own_pg.connect() as db:
        seed(db, events=1, per_event=300, start=datetime.now(UTC) + timedelta(days=30))
        ids = [str(row[0]) for row in db.execute("SELECT id FROM registrations")]
        await defer_confirmations(own_pg, ids)
        assert mail_queue(db) == {"todo": 300}
    env = worker_env(own_pg.url, redis_url, sink.port, WORKER_CONCURRENCY=str(CONCURRENCY))
    process, log = start_worker(env)
    try:
        await asyncio.to_thread(sink.wait_for, 50, 60)
        await asyncio.to_thread(own_pg.restart, 2.0)
        back = time.monotonic()
        at_restart = len(sink.messages)
        assert at_restart < len(ids)
        with own_pg.connect() as db:
            await wait_for(lambda: mail_queue(db) == {}, 60, "mail queue empty")
        print(f"\nqueue empty {time.monotonic() - back:.1f} s after the restart")
        assert process.poll() is None, read(log)  # still running
        received = collections.Counter(m["To"].addresses[0].addr_spec for m in sink.messages)
        assert len(received) == len(ids)
        assert sum(n - 1 for n in received.values()) <= CONCURRENCY
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        output = read(log)
        assert "database (mail worker) unavailable" in output
        assert "database (mail worker) available again" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


BREAK = "ALTER FUNCTION procrastinate_register_worker_v1() RENAME TO broken_register_worker"
MEND = "ALTER FUNCTION broken_register_worker() RENAME TO procrastinate_register_worker_v1"


async def test_a_worker_that_cannot_recover_exits_non_zero(own_pg: OwnPostgres, redis_url, sink):
    """The database answers, but every start of the worker fails: `eventms worker`
    retries with backoff, then gives up with exit status 1 (compose restarts it)."""
    with own_pg.connect() as db:
        db.execute(BREAK)
    try:
        process, log = start_worker(worker_env(own_pg.url, redis_url, sink.port))
        try:
            status = await asyncio.to_thread(process.wait, 60)
        finally:
            if process.poll() is None:
                process.kill()
        output = read(log)
        assert status == 1, output
        assert "restart 1 of 4" in output and "restart 4 of 4" in output
        assert "cannot recover, giving up" in output
    finally:
        with own_pg.connect() as db:
            db.execute(MEND)


class ServeAlive(LiveServer):
    """`eventms serve` waited for until it is alive (/health), not ready."""

    READY_PATH = "/health"


async def test_serve_reports_an_in_process_worker_that_gave_up(
    own_pg: OwnPostgres, redis_url, sink
):
    with own_pg.connect() as db:
        db.execute(BREAK)
    server = ServeAlive(own_pg.url, redis_url, env={"WORKER_IN_PROCESS": "true", **mail_env(sink)})
    try:
        async with httpx.AsyncClient(base_url=server.base, timeout=5) as http:
            deadline = time.monotonic() + 30
            while (body := (await http.get("/ready")).json())["worker"] != "failed":
                assert body["worker"] in ("starting", "recovering"), body
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.2)
            response = await http.get("/ready")
            assert response.status_code == 503
            assert response.json()["down"] == ["worker"]
            assert (await http.get("/health")).status_code == 200
            made = await http.post("/api/v1/attendee", json={"name": "A", "email": "a@x.io"})
            assert made.status_code == 201  # the API itself still serves
        assert "the in-process mail worker has stopped for good" in server.output()
    finally:
        server.stop()
        with own_pg.connect() as db:
            db.execute(MEND)
