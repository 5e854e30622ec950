"""Effects that others can see (cache drops, Socket.IO emits) run only after the
transaction that caused them has committed, never after a rollback.

Services register them with `after_commit`; whoever owns the transaction (the
request's session dependency, a job) calls `run_after_commit` once it committed, or
`discard_after_commit` when it rolled back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("eventms.db")

AfterCommit = Callable[[], Awaitable[None]]
_KEY = "eventms.after_commit"


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once the session's transaction has committed (never on rollback)."""
    session.info.setdefault(_KEY, []).append(callback)


def discard_after_commit(session: AsyncSession) -> None:
    session.info.pop(_KEY, None)


async def run_after_commit(session: AsyncSession) -> None:
    for callback in session.info.pop(_KEY, []):
        try:
            await callback()
        except Exception:  # an effect failing must not turn a committed write into an error
            log.exception("after-commit callback failed")
