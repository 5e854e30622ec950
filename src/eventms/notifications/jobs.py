"""The procrastinate app and its tasks: confirmation, reminder, reminder sweep.

Jobs live in PostgreSQL next to the registrations. The confirmation job is deferred
in the registration's own INSERT (`DEFER_CONFIRMATION`), so a registration that
commits always has its job and one that rolls back never does.
Delivery is at least once: a job is marked done only after the SMTP server took the
mail and the row recorded it, so the only possible duplicate is a mail whose worker
died between those two steps.

This module's `app` has an unopened connector: deferring on an external connection
needs no pool. Workers (`eventms.notifications.worker`) swap in an open one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import procrastinate
from procrastinate.exceptions import JobAborted
from procrastinate.jobs import Job
from procrastinate.types import JSONValue
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.config import Settings
from eventms.db.driver import driver_connection
from eventms.http.activity import Activity
from eventms.notifications import notices
from eventms.notifications.mailer import Mailer, PermanentMailError
from eventms.notifications.messages import CONFIRMATION, REMINDER, build_message
from eventms.notifications.notice_mail import CancelNotice, Whereabouts
from eventms.notifications.repository import claim_due_reminders, load_facts, mark_sent
from eventms.observability import metrics
from eventms.outages import database_outage, describe
from eventms.selfservice.tokens import ManageTokens, manage_url

log = logging.getLogger("eventms.mail")

MAIL_QUEUE = "mail"
PERIODIC_QUEUE = "periodic"

app = procrastinate.App(connector=procrastinate.PsycopgConnector())


class MailRetryStrategy(procrastinate.BaseRetryStrategy):
    """Temporary SMTP failures: retry after base * 2**attempt seconds (capped), up to
    `max_attempts` runs; permanent ones (5xx for the address): fail at once.

    Its numbers come from the worker's Settings (`use_mail_retries`).
    """

    def __init__(self, settings: Settings) -> None:
        self.max_attempts = settings.mail_max_attempts
        self.base_seconds = settings.mail_retry_base_seconds
        self.max_seconds = settings.mail_retry_max_seconds

    def get_retry_decision(
        self, *, exception: BaseException, job: Job
    ) -> procrastinate.RetryDecision | None:
        what = f"mail job {job.id} ({job.task_name} {job.task_kwargs})"
        label = job.task_name.removeprefix("send_")
        if isinstance(exception, asyncio.CancelledError | JobAborted):
            # The worker is stopping and this job outlived SHUTDOWN_TIMEOUT: back in
            # the queue at once for the next worker, whatever attempt it was on (a
            # stop is no failure of the mail; the mail may have gone out, though, if
            # the server took it just before the cut).
            log.warning("%s interrupted by the worker's shutdown: back in the queue", what)
            return procrastinate.RetryDecision(retry_in={"seconds": 0})
        if database_outage(exception):
            # Not the mail's fault: soon again, whatever attempt it was on (the
            # worker's supervisor restarts the worker once the database is back).
            log.warning("%s: database unavailable (%s); retry in 1 s", what, describe(exception))
            return procrastinate.RetryDecision(retry_in={"seconds": 1})
        if isinstance(exception, PermanentMailError):
            metrics.mail_failed(label)
            log.error("%s failed for good: %s; `eventms mail failed` lists it", what, exception)
            return None
        runs = job.attempts + 1  # `attempts` counts the runs before this one
        if runs >= self.max_attempts:
            metrics.mail_failed(label)
            log.error(
                "%s failed after %d attempts, giving up: %s; `eventms mail failed` lists it",
                what,
                runs,
                exception,
            )
            return None
        wait = min(self.max_seconds, self.base_seconds * 2**job.attempts)
        metrics.mail_retried(label)
        log.warning("%s failed (%s); retry %d in %d s", what, exception, runs + 1, wait)
        return procrastinate.RetryDecision(retry_in={"seconds": wait})


class UnbuildableMail(PermanentMailError):
    """The stored data cannot make a message (an invalid address kept from before it
    was checked, say): failed at once, logged once, listed by `eventms mail failed`."""


def _settings(context: procrastinate.JobContext) -> Settings:
    settings = context.additional_context["settings"]
    assert isinstance(settings, Settings)
    return settings


def _mailer(context: procrastinate.JobContext) -> Mailer:
    mailer = context.additional_context["mailer"]
    assert isinstance(mailer, Mailer)
    return mailer


def _manage_tokens(context: procrastinate.JobContext) -> ManageTokens:
    tokens = context.additional_context["manage_tokens"]
    assert isinstance(tokens, ManageTokens)
    return tokens


def _connector(context: procrastinate.JobContext) -> procrastinate.PsycopgConnector:
    assert context.app is not None
    connector = context.app.connector
    assert isinstance(connector, procrastinate.PsycopgConnector)
    return connector


async def _yield_to_api(context: procrastinate.JobContext) -> None:
    """In a worker running beside the API: wait for a pause in its requests."""
    activity = context.additional_context.get("activity")
    longest = _settings(context).worker_yield_seconds
    if isinstance(activity, Activity) and longest > 0:
        await activity.pause(longest)


# For the tasks other features run on this app (webhooks, idempotency purges).
settings_of = _settings
connector_of = _connector


async def _deliver(
    context: procrastinate.JobContext,
    kind: str,
    registration_id: uuid.UUID,
    starts_at: datetime | None = None,
) -> None:
    await _yield_to_api(context)
    settings = _settings(context)
    pool = _connector(context).pool
    now = datetime.now(UTC)
    async with pool.connection() as connection:
        facts = await load_facts(connection, registration_id, settings)
    if facts is None:
        log.info(
            "registration %s is gone (canceled or event deleted): no %s", registration_id, kind
        )
        return
    if kind == CONFIRMATION and facts.confirmation_sent_at is not None:
        return
    if kind == REMINDER:
        if facts.reminder_sent_at is not None:
            return
        if facts.starts_at != starts_at:
            log.info("event of registration %s moved: reminder re-armed", registration_id)
            return
        if facts.starts_at <= now:
            log.info("event of registration %s has begun: no reminder", registration_id)
            return
    token = _manage_tokens(context).token_for(registration_id)
    try:
        message = build_message(
            kind,
            facts,
            sender=settings.smtp_mail_from,
            now=now,
            manage_url=manage_url(settings.app_url, token),
        )
    except Exception as error:  # the same rows would fail the same way on every retry
        raise UnbuildableMail(f"the {kind} mail cannot be built: {error!r}") from error
    await _mailer(context).send(message)
    async with pool.connection() as connection:
        await mark_sent(connection, registration_id, kind)
    metrics.mail_sent("confirmation" if kind == CONFIRMATION else "reminder")
    log.info("%s sent to %s (registration %s)", kind, facts.attendee_email, registration_id)


@app.task(name="send_confirmation", queue=MAIL_QUEUE, pass_context=True)
async def send_confirmation(context: procrastinate.JobContext, registration_id: str) -> None:
    await _deliver(context, CONFIRMATION, uuid.UUID(registration_id))


@app.task(name="send_reminder", queue=MAIL_QUEUE, pass_context=True)
async def send_reminder(
    context: procrastinate.JobContext, registration_id: str, starts_at: str
) -> None:
    await _deliver(context, REMINDER, uuid.UUID(registration_id), datetime.fromisoformat(starts_at))


@app.task(name="send_event_updated", queue=MAIL_QUEUE, pass_context=True)
async def send_event_updated(context: procrastinate.JobContext, registration_id: str) -> None:
    await _yield_to_api(context)
    await notices.deliver_update(
        uuid.UUID(registration_id),
        pool=_connector(context).pool,
        mailer=_mailer(context),
        settings=_settings(context),
        tokens=_manage_tokens(context),
    )


@app.task(name="send_event_canceled", queue=MAIL_QUEUE, pass_context=True)
async def send_event_canceled(context: procrastinate.JobContext, notice: dict[str, Any]) -> None:
    await _yield_to_api(context)
    await notices.deliver_cancellation(
        CancelNotice.from_args(notice), mailer=_mailer(context), settings=_settings(context)
    )


MAIL_TASKS = (send_confirmation, send_reminder, send_event_updated, send_event_canceled)


def use_mail_retries(settings: Settings) -> None:
    """Retry the mail tasks as `settings` say, in a worker about to run them.

    procrastinate's tasks are module-level (deferring needs them before any worker
    exists), and a retry strategy sees no job context: the worker hands its numbers
    to the tasks it runs. Deferring ignores the strategy.
    """
    strategy = MailRetryStrategy(settings)
    for task in MAIL_TASKS:
        task.retry_strategy = strategy


# What `send_confirmation.defer_async` runs (procrastinate's own SQL function), as a
# SELECT that a caller puts in a statement of its own: the registration's INSERT
# defers its job in the same statement, for the row it made (registrations/service.py),
# and travels in one round trip with the read of its answer. procrastinate's
# `defer_async` must wait for the job's id, which would end the pipeline there.
# tests/mail/test_confirmation.py checks that both make the same job.
DEFER_CONFIRMATION = (
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(%(queue)s, %(task)s, %(priority)s,"
    " %(lock)s, %(queueing_lock)s, %(args)s, NULL)::procrastinate_job_to_defer_v1])"
)


def confirmation_job(registration_id: uuid.UUID) -> dict[str, Any]:
    """The parameters of `DEFER_CONFIRMATION` for the registration's mail."""
    return {
        "queue": send_confirmation.queue,
        "task": send_confirmation.name,
        "priority": send_confirmation.priority,
        "lock": send_confirmation.lock,
        "queueing_lock": send_confirmation.queueing_lock,
        "args": Jsonb({"registration_id": str(registration_id)}),
    }


async def defer_confirmations(session: AsyncSession, registration_ids: list[uuid.UUID]) -> None:
    """Defer one confirmation mail per registration, in one statement, in the session's
    transaction (the waiting list's promotions: several at once)."""
    if not registration_ids:
        return
    connection = await driver_connection(session)
    jobs: list[dict[str, JSONValue]] = [{"registration_id": str(rid)} for rid in registration_ids]
    await send_confirmation.configure(connection=connection).batch_defer_async(*jobs)


async def defer_event_updated(
    session: AsyncSession, *, event_id: uuid.UUID, before: Whereabouts
) -> None:
    """The event moved from `before`: one update notice per registration, deferred in
    the session's transaction (see `notices` for how quick moves coalesce)."""
    registration_ids = await notices.record_move(session, event_id=event_id, before=before)
    if not registration_ids:
        return
    connection = await driver_connection(session)
    jobs: list[dict[str, JSONValue]] = [{"registration_id": str(rid)} for rid in registration_ids]
    await send_event_updated.configure(connection=connection).batch_defer_async(*jobs)


async def defer_event_canceled(session: AsyncSession, *, event_id: uuid.UUID) -> None:
    """The event is about to be deleted: one cancellation notice per registered and
    waiting attendee, carrying what it says, deferred in the session's transaction."""
    notices_due = await notices.cancellation_notices(session, event_id=event_id)
    if not notices_due:
        return
    connection = await driver_connection(session)
    jobs: list[dict[str, JSONValue]] = [{"notice": n.to_args()} for n in notices_due]
    await send_event_canceled.configure(connection=connection).batch_defer_async(*jobs)


async def queue_due_reminders(
    connection: AsyncConnection[Any], *, settings: Settings, now: datetime, batch: int = 500
) -> int:
    """Defer one reminder job per registration due at `now`, marking each row in the
    same transaction; return how many. Safe to run from many workers at once."""
    queued = 0
    while True:
        async with connection.transaction():
            claimed = await claim_due_reminders(connection, now=now, settings=settings, limit=batch)
            if claimed:
                jobs: list[dict[str, JSONValue]] = [
                    {"registration_id": str(rid), "starts_at": starts.isoformat()}
                    for rid, starts in claimed
                ]
                await send_reminder.configure(connection=connection).batch_defer_async(*jobs)
        queued += len(claimed)
        if len(claimed) < batch:
            return queued


@app.periodic(cron="* * * * *", periodic_id="sweep_reminders")
@app.task(name="sweep_reminders", queue=PERIODIC_QUEUE, pass_context=True)
async def sweep_reminders(context: procrastinate.JobContext, timestamp: int) -> None:
    async with _connector(context).pool.connection() as connection:
        queued = await queue_due_reminders(
            connection, settings=_settings(context), now=datetime.now(UTC)
        )
    if queued:
        log.info("queued %d reminders", queued)


async def retry_stalled_jobs(settings: Settings) -> int:
    """Put back in the queue the jobs of workers that stopped sending heartbeats
    (killed, host lost); the worker's own app must be open. Return how many."""
    stalled = list(
        await app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=settings.worker_stalled_seconds
        )
    )
    for job in stalled:
        log.warning("job %s (%s) was running on a dead worker: retrying it", job.id, job.task_name)
        await app.job_manager.retry_job(job)
    return len(stalled)


@app.periodic(cron="* * * * *", periodic_id="retry_stalled_jobs")
@app.task(name="retry_stalled_jobs", queue=PERIODIC_QUEUE, pass_context=True)
async def retry_stalled(context: procrastinate.JobContext, timestamp: int) -> None:
    await retry_stalled_jobs(_settings(context))
