"""Running workers: `eventms worker`, the one inside `eventms serve`, and the failed list."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable

import procrastinate
import psycopg
from procrastinate.app import WorkerOptions

# Imported for their tasks: this worker runs them too (queues `webhooks`, `periodic`).
import eventms.idempotency.jobs
import eventms.webhooks.jobs  # noqa: F401
from eventms.config import Settings
from eventms.notifications.jobs import app, retry_stalled_jobs, use_mail_retries
from eventms.notifications.mailer import Mailer
from eventms.notifications.repository import FailedMail, failed_mail

log = logging.getLogger("eventms.mail")


async def run_worker(
    settings: Settings,
    *,
    concurrency: int | None = None,
    wait: bool = True,
    queues: Iterable[str] | None = None,
    install_signal_handlers: bool = True,
) -> None:
    """Run a worker until it is stopped (or, with `wait=False`, until no job is due)."""
    concurrency = concurrency or settings.worker_concurrency
    use_mail_retries(settings)
    _warn_if_shutdown_outlasts_heartbeat(settings)
    mailer = Mailer(settings)
    connector = procrastinate.PsycopgConnector(
        conninfo=settings.libpq_url(), min_size=1, max_size=concurrency + 4
    )
    with app.replace_connector(connector):
        async with app.open_async():
            # Jobs left `doing` by a worker killed earlier: back in the queue now,
            # rather than at the next minute's `retry_stalled_jobs`.
            await retry_stalled_jobs(settings)
            options: WorkerOptions = {
                "concurrency": concurrency,
                "wait": wait,
                "install_signal_handlers": install_signal_handlers,
                "additional_context": {"settings": settings, "mailer": mailer},
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
            try:
                await app.run_worker_async(**options)
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
async def in_process_worker(settings: Settings) -> AsyncIterator[None]:
    """Run one worker beside the API for as long as the block runs, when
    `worker_in_process` says so (the embedded, single-command set-up)."""
    if not settings.worker_in_process:
        yield
        return
    task = asyncio.create_task(run_worker(settings, install_signal_handlers=False))
    log.info("mail worker running in-process (WORKER_IN_PROCESS=false to turn it off)")
    try:
        yield
    finally:
        # procrastinate stops gracefully: running jobs get SHUTDOWN_TIMEOUT to finish.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def list_failed_mail(settings: Settings, *, limit: int = 100) -> list[FailedMail]:
    async with await psycopg.AsyncConnection.connect(settings.libpq_url()) as connection:
        return await failed_mail(connection, limit=limit)
