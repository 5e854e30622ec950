"""Running workers: `eventms worker`, the one inside `eventms serve` (both supervised,
see `supervisor`), and the failed list."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import procrastinate
import psycopg

# Imported for their tasks: this worker runs them too (queues `webhooks`, `periodic`).
import eventms.idempotency.jobs
import eventms.webhooks.jobs  # noqa: F401
from eventms.config import Settings
from eventms.http.activity import ACTIVITY, Activity
from eventms.notifications.jobs import app, use_mail_retries
from eventms.notifications.mailer import Mailer
from eventms.notifications.repository import FailedMail, failed_mail
from eventms.notifications.supervisor import FAILED, Supervisor, WorkerGaveUp, WorkerHealth
from eventms.outages import describe
from eventms.secret_key import load_secret_key
from eventms.selfservice.tokens import ManageTokens

log = logging.getLogger("eventms.mail")

POOL_TIMEOUT = 5.0  # seconds a job waits for a pooled connection


async def run_worker(
    settings: Settings,
    *,
    concurrency: int | None = None,
    wait: bool = True,
    queues: Iterable[str] | None = None,
    install_signal_handlers: bool = True,
    health: WorkerHealth | None = None,
    activity: Activity | None = None,
) -> None:
    """Run a worker until it is stopped (or, with `wait=False`, until no job is due).

    With `wait`, the worker is supervised: it reconnects after a database outage and
    raises WorkerGaveUp only when it keeps failing with the database up. Given the
    `activity` of the API it runs beside, each mail waits for a pause in requests
    (WORKER_YIELD_SECONDS at most, see `http.activity`).
    """
    concurrency = concurrency or settings.worker_concurrency
    health = health if health is not None else WorkerHealth()
    use_mail_retries(settings)
    manage_tokens = ManageTokens(load_secret_key(settings))
    _warn_if_shutdown_outlasts_heartbeat(settings)
    mailer = Mailer(settings)
    connector = procrastinate.PsycopgConnector(
        conninfo=settings.libpq_url(),
        min_size=1,
        max_size=concurrency + 4,
        # A job needs a connection for a moment; waiting long for one only means the
        # database is gone, and the job is better retried than held (default 30 s).
        timeout=POOL_TIMEOUT,
    )
    options: dict[str, Any] = {
        "concurrency": concurrency,
        "wait": wait,
        # The supervisor handles SIGTERM/SIGINT: a stop it asked for is not a failure.
        "install_signal_handlers": False,
        "additional_context": {
            "settings": settings,
            "mailer": mailer,
            "manage_tokens": manage_tokens,
            "activity": activity,
        },
        "update_heartbeat_interval": settings.worker_heartbeat_seconds,
        "stalled_worker_timeout": settings.worker_stalled_seconds,
        # Done jobs go; failed ones stay for `eventms mail failed`.
        "delete_jobs": "successful",
        # On SIGTERM/SIGINT (or cancellation) procrastinate stops fetching and
        # waits this long for the running jobs; then it cancels them, and
        # `MailRetryStrategy` puts them back in the queue at once.
        "shutdown_graceful_timeout": settings.shutdown_timeout,
    }
    if queues is not None:
        options["queues"] = list(queues)
    supervisor = Supervisor(app, settings, options, health)
    signals = supervisor.stop_on_signals() if install_signal_handlers else contextlib.nullcontext()
    with app.replace_connector(connector), signals:
        try:
            if wait:
                await supervisor.run()
            else:
                await supervisor.run_once()
        except Exception as error:
            health.set(FAILED, describe(error))
            raise
        finally:
            await mailer.close()


def _warn_if_shutdown_outlasts_heartbeat(settings: Settings) -> None:
    # procrastinate stops heartbeating when a stop begins; if the wait for running
    # jobs could outlast WORKER_STALLED_SECONDS, another worker may take this one
    # for dead and run those jobs a second time.
    longest_silence = settings.worker_heartbeat_seconds + settings.shutdown_timeout
    if longest_silence >= settings.worker_stalled_seconds:
        log.warning(
            "WORKER_HEARTBEAT_SECONDS + SHUTDOWN_TIMEOUT (%s s) >= WORKER_STALLED_SECONDS"
            " (%s s): a stopping worker's last jobs may be retried elsewhere and sent twice",
            longest_silence,
            settings.worker_stalled_seconds,
        )


@contextlib.asynccontextmanager
async def in_process_worker(settings: Settings) -> AsyncIterator[WorkerHealth | None]:
    """Run one supervised worker beside the API for as long as the block runs, when
    `worker_in_process` says so (the embedded, single-command set-up); yield its
    health (None without a worker) for /ready."""
    if not settings.worker_in_process:
        yield None
        return
    health = WorkerHealth()
    task = asyncio.create_task(
        run_worker(settings, install_signal_handlers=False, health=health, activity=ACTIVITY)
    )
    task.add_done_callback(_report_end)
    log.info("mail worker running in-process (WORKER_IN_PROCESS=false to turn it off)")
    try:
        yield health
    finally:
        # procrastinate stops gracefully: running jobs get SHUTDOWN_TIMEOUT to finish.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):  # reported already
            await task


def _report_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error(
            "the in-process mail worker has stopped for good (%s): no mail is sent by this"
            " process and /ready answers 503 until `eventms serve` is restarted",
            describe(error),
            exc_info=error if not isinstance(error, WorkerGaveUp) else None,
        )


async def list_failed_mail(settings: Settings, *, limit: int = 100) -> list[FailedMail]:
    async with await psycopg.AsyncConnection.connect(settings.libpq_url()) as connection:
        return await failed_mail(connection, limit=limit)
