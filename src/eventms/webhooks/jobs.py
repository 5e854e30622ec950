"""The webhook tasks: deliver one delivery (retried with backoff for about a day),
and purge the delivery log.

One endpoint gets at most WEBHOOK_ENDPOINT_CONCURRENCY requests at once, over all
workers: an attempt first takes one of the endpoint's slots (a PostgreSQL advisory
lock, held for the attempt, gone with a dead worker's connection). A job that finds
every slot taken waits for one at most a second, then goes back to the queue for
a few seconds: so a slow receiver holds at most that many worker slots, and the
rest stay free for mail (webhook jobs also have a lower priority than mail: when
both are due, a free slot takes the mail).

(procrastinate's own `lock` would also bound it, but its jobs queue behind one
another, a retry waiting an hour holds up every later delivery, and a worker does
not look for the next job of a lock when the one before ends, only at its next
poll.)

Delivery is at least once: a worker killed mid-attempt leaves the job to be retried
with the same `webhook-id`, which receivers use to drop the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
from procrastinate.exceptions import JobAborted
from procrastinate.jobs import Job
from psycopg import AsyncConnection
from psycopg.errors import LockNotAvailable
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.config import Settings
from eventms.db.driver import driver_connection
from eventms.notifications.jobs import PERIODIC_QUEUE, app, connector_of, settings_of
from eventms.webhooks.delivery import Attempt, attempt
from eventms.webhooks.models import DELIVERED, FAILED, PENDING
from eventms.webhooks.signing import message_id

log = logging.getLogger("eventms.webhooks")

WEBHOOK_QUEUE = "webhooks"
PRIORITY = -1  # below mail (0)
_UNEXPECTED_RETRY_SECONDS = 60


_SLOT_NAMESPACE = 0x77680000  # first key of the slots' advisory locks ("wh")
_SLOT_WAIT_MS = 1000
_BUSY_RETRY_SECONDS = (1.0, 3.0)


class RetryLater(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry in {seconds:.1f} s")
        self.seconds = seconds


class WebhookRetryStrategy(procrastinate.BaseRetryStrategy):
    """The task decides (it knows the delivery's age and the receiver's Retry-After)
    and says so with RetryLater; this only turns that into procrastinate's terms."""

    def get_retry_decision(
        self, *, exception: BaseException, job: Job
    ) -> procrastinate.RetryDecision | None:
        if isinstance(exception, asyncio.CancelledError | JobAborted):
            return procrastinate.RetryDecision(retry_in={"seconds": 0})  # worker stopping
        if isinstance(exception, RetryLater):
            at = datetime.now(UTC) + timedelta(seconds=exception.seconds)
            return procrastinate.RetryDecision(retry_at=at)
        log.error("webhook job %s failed unexpectedly: %r; retrying", job.id, exception)
        return procrastinate.RetryDecision(retry_in={"seconds": _UNEXPECTED_RETRY_SECONDS})


async def defer_delivery(
    session: AsyncSession, delivery_id: uuid.UUID, endpoint_id: uuid.UUID
) -> None:
    """Defer the delivery's job in the session's transaction (commits with it)."""
    connection = await driver_connection(session)
    await deliver_webhook.configure(connection=connection, priority=PRIORITY).defer_async(
        delivery_id=str(delivery_id), endpoint_id=str(endpoint_id)
    )


def backoff_seconds(settings: Settings, attempts: int, retry_after: float | None) -> float:
    """Exponential, with jitter (half fixed, half random), never before Retry-After."""
    ceiling = min(
        settings.webhook_retry_max_seconds,
        settings.webhook_retry_base_seconds * 2 ** max(0, attempts - 1),
    )
    wait = ceiling / 2 + random.uniform(0, ceiling / 2)
    return max(wait, retry_after or 0.0)


def _slot_keys(endpoint_id: str, slot: int) -> tuple[int, int]:
    return _SLOT_NAMESPACE + slot, uuid.UUID(endpoint_id).int % 2**31


async def _take_slot(
    connection: AsyncConnection[Any], endpoint_id: str, slots: int
) -> tuple[int, int] | None:
    """One of the endpoint's slots (a session-level advisory lock), or None when all
    stay taken for a second. Commits, so that the connection is not left idle in a
    transaction during the attempt."""
    order = random.sample(range(slots), slots)
    for slot in order:
        keys = _slot_keys(endpoint_id, slot)
        got = await (
            await connection.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", keys)
        ).fetchone()
        await connection.commit()
        if got and got[0]:
            return keys
    keys = _slot_keys(endpoint_id, order[0])
    try:
        async with connection.transaction():
            await connection.execute(f"SET LOCAL lock_timeout = '{_SLOT_WAIT_MS}ms'")
            await connection.execute("SELECT pg_advisory_lock(%s::int, %s::int)", keys)
    except LockNotAvailable:
        return None
    finally:
        await connection.commit()
    return keys


@contextlib.asynccontextmanager
async def endpoint_slot(
    pool: AsyncConnectionPool[Any], endpoint_id: str, slots: int
) -> AsyncIterator[bool]:
    """Hold one of the endpoint's slots for the block (yield False: none is free)."""
    async with pool.connection() as connection:
        held = await _take_slot(connection, endpoint_id, slots)
        try:
            yield held is not None
        finally:
            if held is not None:
                await connection.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", held)
                await connection.commit()


_LOAD = """
SELECT d.status, d.attempts, d.created_at, d.body, e.url, e.secret, e.enabled
  FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
 WHERE d.id = %s
"""


@app.task(
    name="deliver_webhook",
    queue=WEBHOOK_QUEUE,
    pass_context=True,
    retry=WebhookRetryStrategy(),
)
async def deliver_webhook(
    context: procrastinate.JobContext, delivery_id: str, endpoint_id: str
) -> None:
    settings = settings_of(context)
    pool = connector_of(context).pool
    async with pool.connection() as connection:
        row = await (await connection.execute(_LOAD, (delivery_id,))).fetchone()
    if row is None:
        return  # the endpoint was deleted, or the log purged
    status, attempts, created_at, body, url, secret, enabled = row
    if status != PENDING:
        return
    if not enabled:
        async with pool.connection() as connection:
            await _finish(connection, delivery_id, FAILED, None, "endpoint disabled")
        return
    async with endpoint_slot(pool, endpoint_id, settings.webhook_endpoint_concurrency) as free:
        if not free:
            raise RetryLater(random.uniform(*_BUSY_RETRY_SECONDS))
        outcome = await attempt(
            url=url,
            secret=secret,
            msg_id=message_id(uuid.UUID(delivery_id)),
            body=body,
            timeout_seconds=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_private_allowed,
        )
    async with pool.connection() as connection:
        retry_in = await _record(
            connection, settings, delivery_id, endpoint_id, attempts + 1, created_at, outcome
        )
    if retry_in is not None:
        raise RetryLater(retry_in)


async def _finish(
    connection: AsyncConnection[Any],
    delivery_id: str,
    status: str,
    code: int | None,
    error: str | None,
    attempted: bool = False,
) -> None:
    await connection.execute(
        "UPDATE webhook_deliveries SET status = %s, last_status_code = COALESCE(%s,"
        " last_status_code), last_error = %s, next_attempt_at = NULL,"
        " attempts = attempts + %s, last_attempt_at = CASE WHEN %s THEN now()"
        " ELSE last_attempt_at END,"
        " delivered_at = CASE WHEN %s = 'delivered' THEN now() ELSE delivered_at END"
        " WHERE id = %s",
        (status, code, error, int(attempted), attempted, status, delivery_id),
    )


async def _record(
    connection: AsyncConnection[Any],
    settings: Settings,
    delivery_id: str,
    endpoint_id: str,
    attempts: int,
    created_at: datetime,
    outcome: Attempt,
) -> float | None:
    """Write down how the attempt went, in one transaction; the seconds until the next
    attempt, or None when there is none."""
    async with connection.transaction():
        if outcome.delivered:
            await _finish(connection, delivery_id, DELIVERED, outcome.status_code, None, True)
            await connection.execute(
                "UPDATE webhook_endpoints SET failing_since = NULL"
                " WHERE id = %s AND failing_since IS NOT NULL",
                (endpoint_id,),
            )
            return None
        failing = await (
            await connection.execute(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, now())"
                " WHERE id = %s RETURNING failing_since, now()",
                (endpoint_id,),
            )
        ).fetchone()
        assert failing is not None
        failing_since, now = failing
        reason = None
        if outcome.gone:
            reason = "the receiver answered 410 Gone"
        elif now - failing_since >= timedelta(hours=settings.webhook_disable_after_hours):
            reason = (
                f"every delivery failed for {settings.webhook_disable_after_hours:g} h"
                f" (last: {outcome.error})"
            )
        if reason is not None:
            await connection.execute(
                "UPDATE webhook_endpoints SET enabled = false, disabled_reason = %s,"
                " updated_at = now() WHERE id = %s",
                (reason, endpoint_id),
            )
            await _finish(connection, delivery_id, FAILED, outcome.status_code, outcome.error, True)
            log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
            return None
        wait = backoff_seconds(settings, attempts, outcome.retry_after)
        deadline = created_at + timedelta(hours=settings.webhook_retry_hours)
        if now + timedelta(seconds=wait) > deadline:
            await _finish(connection, delivery_id, FAILED, outcome.status_code, outcome.error, True)
            log.warning(
                "webhook delivery %s failed for good after %d attempts: %s",
                delivery_id,
                attempts,
                outcome.error,
            )
            return None
        await connection.execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = now(),"
            " last_status_code = %s, last_error = %s,"
            " next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
            (outcome.status_code, outcome.error, wait, delivery_id),
        )
    log.info(
        "webhook delivery %s attempt %d: %s; retry in %.0f s",
        delivery_id,
        attempts,
        outcome.error,
        wait,
    )
    return wait


_BATCH = 10_000


async def purge_deliveries(connection: AsyncConnection[Any], *, days: int) -> int:
    """Drop deliveries older than `days` (in batches: short transactions); how many."""
    purged = 0
    while True:
        cursor = await connection.execute(
            "DELETE FROM webhook_deliveries WHERE id = ANY(ARRAY("
            " SELECT id FROM webhook_deliveries"
            " WHERE created_at < now() - make_interval(days => %s) LIMIT %s))",
            (days, _BATCH),
        )
        await connection.commit()
        purged += cursor.rowcount
        if cursor.rowcount < _BATCH:
            return purged


@app.periodic(cron="17 * * * *", periodic_id="purge_webhook_deliveries")
@app.task(name="purge_webhook_deliveries", queue=PERIODIC_QUEUE, pass_context=True)
async def purge_webhook_deliveries(context: procrastinate.JobContext, timestamp: int) -> None:
    days = settings_of(context).webhook_log_days
    async with connector_of(context).pool.connection() as connection:
        purged = await purge_deliveries(connection, days=days)
    if purged:
        log.info("purged %d webhook deliveries older than %d days", purged, days)
