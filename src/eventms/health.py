"""Readiness: can this instance do its work now, part by part (`GET /ready`).

- `database`: a pooled connection answers `SELECT 1` (`down` otherwise);
- `redis`: PING answers (`off` when none is configured: the API works without);
- `worker`: the in-process mail worker's state (`running`, or `starting`,
  `recovering`, `failed`; `off` when WORKER_IN_PROCESS is false);
- `mailQueue`: `stale` when the oldest mail job that is due has waited longer
  than MAIL_STALE_AFTER_SECONDS (nobody sends, or not fast enough), `unknown`
  while the database is down; `oldestDueMailSeconds` says how long.

Any part down makes it a 503, with `down` listing them. Each check waits at most
CHECK_TIMEOUT: a frozen server must not freeze the probe. `/health` is the liveness
probe and checks nothing. The oldest due job's age is a metric too
(`eventms_mail_oldest_due_seconds`), read at scrape time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from eventms.config import Settings
from eventms.notifications.supervisor import WorkerHealth
from eventms.outages import describe

log = logging.getLogger("eventms.health")

CHECK_TIMEOUT = 2.0

# Due since its `scheduled_at` (a retry, a stalled job put back), or since it was
# deferred (no `scheduled_at`): the oldest of those is the lowest id, whose
# `deferred` event says when.
OLDEST_DUE_MAIL_SQL = text(
    """
    SELECT extract(epoch FROM now() - least(
        (SELECT min(scheduled_at) FROM procrastinate_jobs
          WHERE queue_name = 'mail' AND status = 'todo' AND scheduled_at <= now()),
        (SELECT min(ev.at) FROM procrastinate_events ev
          WHERE ev.type = 'deferred' AND ev.job_id = (
                SELECT min(id) FROM procrastinate_jobs
                 WHERE queue_name = 'mail' AND status = 'todo' AND scheduled_at IS NULL))
    ))
    """
)


async def oldest_due_mail_seconds(connection: AsyncConnection) -> float | None:
    """How long the oldest due mail job has waited (0.0: none waits); None before
    procrastinate's schema exists."""
    if await connection.scalar(text("SELECT to_regclass('procrastinate_jobs')")) is None:
        return None
    age = await connection.scalar(OLDEST_DUE_MAIL_SQL)
    return max(0.0, float(age)) if age is not None else 0.0


async def _database(engine: AsyncEngine) -> tuple[bool, float | None]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            return True, await oldest_due_mail_seconds(connection)
    except Exception as error:
        log.debug("readiness: database: %s", describe(error))
        return False, None


async def _redis(redis: Redis | None) -> str:
    if redis is None:
        return "off"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await redis.ping()
    except Exception as error:
        log.debug("readiness: redis: %r", error)
        return "down"
    return "up"


class Readiness:
    """Checks the parts and logs when the answer changes, not on every probe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._last_down: list[str] | None = None

    async def check(
        self, engine: AsyncEngine, redis: Redis | None, worker: WorkerHealth | None
    ) -> tuple[int, dict[str, Any]]:
        (database_up, oldest), redis_state = await asyncio.gather(_database(engine), _redis(redis))
        if not database_up:
            queue = "unknown"
        elif oldest is not None and oldest > self.settings.mail_stale_after_seconds:
            queue = "stale"
        else:
            queue = "ok"
        body: dict[str, Any] = {
            "status": "ok",
            "database": "up" if database_up else "down",
            "redis": redis_state,
            "worker": worker.state if worker is not None else "off",
            "mailQueue": queue,
            "oldestDueMailSeconds": round(oldest, 1) if oldest is not None else None,
        }
        down = [
            part
            for part, bad in (
                ("database", not database_up),
                ("redis", redis_state == "down"),
                ("worker", worker is not None and not worker.ok),
                ("mailQueue", queue == "stale"),
            )
            if bad
        ]
        self._log_change(down, worker)
        if down:
            body["status"] = "unavailable"
            body["down"] = down
            return 503, body
        return 200, body

    def _log_change(self, down: list[str], worker: WorkerHealth | None) -> None:
        if down == self._last_down or (self._last_down is None and not down):
            self._last_down = down
            return
        if down:
            why = f" (worker: {worker.reason})" if "worker" in down and worker else ""
            log.warning("not ready: %s down%s", ", ".join(down), why)
        else:
            log.warning("ready again")
        self._last_down = down
