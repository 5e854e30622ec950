"""The periodic purge of expired Idempotency-Key answers (every worker may run it;
procrastinate defers each periodic run once across all of them)."""

from __future__ import annotations

import logging
from typing import Any

import procrastinate
from psycopg import AsyncConnection

from eventms.notifications.jobs import PERIODIC_QUEUE, app, connector_of

log = logging.getLogger("eventms.idempotency")

_BATCH = 10_000  # rows per statement: short locks, short transactions


async def purge_expired(connection: AsyncConnection[Any]) -> int:
    """Drop the expired answers (in batches: short transactions); how many."""
    purged = 0
    while True:
        cursor = await connection.execute(
            "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
            " SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT %s))",
            (_BATCH,),
        )
        await connection.commit()
        purged += cursor.rowcount
        if cursor.rowcount < _BATCH:
            return purged


@app.periodic(cron="7 * * * *", periodic_id="purge_idempotency_keys")
@app.task(name="purge_idempotency_keys", queue=PERIODIC_QUEUE, pass_context=True)
async def purge_idempotency_keys(context: procrastinate.JobContext, timestamp: int) -> None:
    async with connector_of(context).pool.connection() as connection:
        purged = await purge_expired(connection)
    if purged:
        log.info("purged %d expired idempotency keys", purged)
