"""A database that cannot be reached is a 503, not a 500.

While PostgreSQL is down, restarting, out of connection slots, or the pool has no
connection to give, every request that needs it answers
`503 Service temporarily unavailable` with `Retry-After`, in the error envelope.
The log says so once when the outage begins and once when a statement succeeds
again (SQLAlchemy's `after_cursor_execute`, listened to only during an outage), not
once per request. A 500 stays what it is: a bug.

Pure ASGI middleware, inside `UnexpectedErrorMiddleware` (which would otherwise
answer 500) and inside CORS (so that a browser sees the 503).
"""

from __future__ import annotations

import logging

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response
from starlette.types import ASGIApp, Scope

from eventms.http.errors import AnsweringErrors, error_response
from eventms.outages import OutageLog, database_outage, database_unavailable, describe

log = logging.getLogger("eventms.outage")

RETRY_AFTER_SECONDS = 5
MESSAGE = "Service temporarily unavailable"


def unavailable_response() -> Response:
    return error_response(503, MESSAGE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class OutageMiddleware(AnsweringErrors):
    def __init__(self, app: ASGIApp, engine: AsyncEngine) -> None:
        super().__init__(app)
        self.engine = engine
        self.outage = OutageLog(log, "database")

    async def answer(self, scope: Scope, error: Exception) -> Response | None:
        if not database_unavailable(error):
            return None
        self._note(scope, error)
        return unavailable_response()

    def _note(self, scope: Scope, error: Exception) -> None:
        if not database_outage(error):
            # One statement's trouble (a deadlock, a timeout), not the server's.
            log.warning(
                "%s %s: database error, answered 503: %s",
                scope["method"],
                scope["path"],
                describe(error),
                exc_info=error,
            )
            return
        engine = self.engine
        if not self.outage.ongoing:
            # Any statement of this app's engine that succeeds afterwards ends it.
            event.listen(
                engine.sync_engine, "after_cursor_execute", self._statement_succeeded, once=True
            )
        self.outage.failed(error, "answering 503 until it is back")

    def _statement_succeeded(self, *_: object) -> None:
        self.outage.recovered()
