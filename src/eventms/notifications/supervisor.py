"""Keep a mail worker running through database outages, and say so when it cannot.

procrastinate 3 stops a worker for good when one of its side tasks (the LISTEN
connection, the heartbeat, the periodic deferrer) meets a database error ("Side
task listener failed with exception: Database error, stopping worker"). And a
worker that does ride out a short outage (its pool waits for connections) may
hold jobs it could not record: a job whose end was to be written while the
connection died stays `doing` under a worker that is alive and heartbeating, so
nothing ever retries it.

The supervisor runs one worker after another:

- when a run meets database trouble (its pool lost or could not open connections,
  or it failed with an outage error), the run is ended once the database answers
  again, gracefully (running jobs finish), and a new one starts: the jobs the old
  one left `doing` are freed (its worker row is deleted, so procrastinate counts
  them stalled) and put back in the queue at once;
- while the database does not answer, it waits, one connection attempt a second,
  and logs the outage once when it begins and once when the worker runs again;
- a run that fails while the database is fine is restarted after a backoff; after
  GIVE_UP_AFTER such failures in a row (none running HEALTHY_RUN_SECONDS) the
  supervisor gives up with WorkerGaveUp: `eventms worker` exits 1, `serve` reports
  the worker failed on /ready.

`WorkerHealth` is what /ready reads: `starting`, `running`, `recovering`, `failed`
or `stopped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import procrastinate
import psycopg
import psycopg_pool
from procrastinate.worker import Worker

from eventms.config import Settings
from eventms.notifications.jobs import retry_stalled_jobs
from eventms.outages import OutageLog, database_outage, describe

log = logging.getLogger("eventms.mail")

PROBE_INTERVAL = 1.0  # seconds between checks while the database is away / troubled
PROBE_TIMEOUT = 3.0
RESTART_DELAYS = (0.5, 1.0, 2.0, 4.0)  # after failures with the database answering
GIVE_UP_AFTER = 5
HEALTHY_RUN_SECONDS = 30.0

STARTING, RUNNING, RECOVERING, FAILED, STOPPED = (
    "starting",
    "running",
    "recovering",
    "failed",
    "stopped",
)

# psycopg_pool's counters of connections that broke, or could not be made or had.
_TROUBLE = ("connections_errors", "connections_lost", "returns_bad", "requests_errors")


def _trouble(pool: psycopg_pool.AsyncConnectionPool) -> int:
    stats = pool.get_stats()
    return sum(stats.get(name, 0) for name in _TROUBLE)


@dataclass
class WorkerHealth:
    """The state of one supervised worker, and why, for /ready and the logs."""

    state: str = STARTING
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == RUNNING

    def set(self, state: str, reason: str | None = None) -> None:
        self.state, self.reason = state, reason


class WorkerGaveUp(Exception):
    """The worker failed GIVE_UP_AFTER times in a row with the database answering."""


class DatabaseTrouble(Exception):
    """The run's pool lost or could not get connections (psycopg_pool counted it)."""


class Supervisor:
    def __init__(
        self,
        app: procrastinate.App,
        settings: Settings,
        options: dict[str, Any],
        health: WorkerHealth,
    ) -> None:
        self.app = app
        self.settings = settings
        self.options = options
        self.health = health
        self.outage = OutageLog(log, "database (mail worker)")
        self._stop = asyncio.Event()
        self._worker: Worker | None = None
        self._dead_worker_id: int | None = None
        self._last_probe_error: BaseException = ConnectionError("not tried yet")

    def stop(self) -> None:
        """Stop gracefully: running jobs get SHUTDOWN_TIMEOUT to finish."""
        self._stop.set()
        if self._worker is not None:
            self._worker.stop()

    async def run_once(self) -> None:
        """One worker run on a freshly opened pool, until it stops or fails; raises
        DatabaseTrouble when it ended because the database failed under it."""
        async with self.app.open_async():
            if self._dead_worker_id is not None:
                # Its jobs are done running (procrastinate waited for or cut them
                # before it ended); with its row gone they count as stalled now.
                await self.app.job_manager.unregister_worker(self._dead_worker_id)
                self._dead_worker_id = None
            await retry_stalled_jobs(self.settings)
            connector = self.app.connector
            assert isinstance(connector, procrastinate.PsycopgConnector)
            pool = connector.pool
            baseline = _trouble(pool)
            worker = Worker(self.app, **self.options)
            self._worker = worker
            watcher = asyncio.create_task(self._watch(pool, baseline, worker))
            try:
                if not self._stop.is_set():
                    await worker.run()
            finally:
                watcher.cancel()
                self._worker = None
                # Still set: the run ended before it could unregister (database gone).
                self._dead_worker_id = worker.worker_id
            if _trouble(pool) > baseline:
                raise DatabaseTrouble(f"{_trouble(pool) - baseline} connections lost or refused")

    async def _watch(
        self, pool: psycopg_pool.AsyncConnectionPool, baseline: int, worker: Worker
    ) -> None:
        """Say the worker runs once it has registered; once its pool has met trouble
        and the database answers again, end the run so that the next one frees what
        this one could not record."""
        # procrastinate offers no signal for "registered" but the id it then sets.
        while worker.worker_id is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self.health.set(RUNNING)
        self.outage.recovered("mail worker running again")
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            if _trouble(pool) == baseline:
                continue
            trouble = DatabaseTrouble(f"{_trouble(pool) - baseline} connections lost or refused")
            self.health.set(RECOVERING, describe(trouble))
            self.outage.failed(trouble, "mail worker restarting once it answers")
            if await self._answers():
                worker.stop()
                return

    async def run(self) -> None:
        """Runs until stopped; raises WorkerGaveUp when the worker cannot recover."""
        failures = 0
        while not self._stop.is_set():
            if not await self._until_database_answers():
                break
            started = time.monotonic()
            error: Exception | None = None
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as failed:
                error = failed
            if self._stop.is_set():
                break
            if time.monotonic() - started >= HEALTHY_RUN_SECONDS:
                failures = 0
            if error is None and not await self._answers():
                error = DatabaseTrouble("the database went away")
            if isinstance(error, DatabaseTrouble) or (
                error is not None and database_outage(error)
            ):
                self.health.set(RECOVERING, describe(error))
                self.outage.failed(error, "mail worker restarting once it answers")
                continue
            failures += 1
            reason = describe(error) if error is not None else "stopped on its own"
            if failures >= GIVE_UP_AFTER:
                self.health.set(FAILED, reason)
                log.error(
                    "mail worker failed %d times in a row with the database up (%s): giving up",
                    failures,
                    reason,
                )
                raise WorkerGaveUp(reason) from error
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS)) - 1]
            self.health.set(RECOVERING, reason)
            log.error(
                "mail worker stopped (%s); restart %d of %d in %.1f s",
                reason,
                failures,
                GIVE_UP_AFTER - 1,
                delay,
                exc_info=error,
            )
            await self._sleep(delay)
        self.health.set(STOPPED)

    async def _answers(self) -> bool:
        try:
            connection = await asyncio.wait_for(
                psycopg.AsyncConnection.connect(self.settings.libpq_url(), autocommit=True),
                PROBE_TIMEOUT,
            )
        except (psycopg.Error, OSError, TimeoutError) as error:
            self._last_probe_error = error
            return False
        await connection.close()
        return True

    async def _until_database_answers(self) -> bool:
        """Wait until a connection succeeds; False if stopped meanwhile."""
        while not self._stop.is_set():
            if await self._answers():
                return True
            self.health.set(RECOVERING, describe(self._last_probe_error))
            self.outage.failed(self._last_probe_error, "mail worker waiting for it")
            await self._sleep(PROBE_INTERVAL)
        return False

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    @contextlib.contextmanager
    def stop_on_signals(self) -> Iterator[None]:
        """SIGTERM / SIGINT stop the worker gracefully; a second one goes to the
        handlers that were there before (the CLI's: leave now)."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        previous = {number: signal.getsignal(number) for number in signals}
        installed = True

        def restore() -> None:
            nonlocal installed
            if installed:
                installed = False
                for number, handler in previous.items():
                    loop.remove_signal_handler(number)
                    signal.signal(number, handler)

        def on_signal() -> None:
            restore()
            log.info("mail worker stopping: running jobs get %s s", self.settings.shutdown_timeout)
            self.stop()

        for number in signals:
            loop.add_signal_handler(number, on_signal)
        try:
            yield
        finally:
            restore()
