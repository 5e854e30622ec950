"""What counts as "the database is unavailable", for the API (503) and the workers
(reconnect instead of stopping), and a log that speaks once per outage.

An *outage* is a failure of the connection itself: the server refuses or drops it,
is shutting down or starting up, has no connection slot left, or no pooled
connection came free in time. Other operational errors (a deadlock, a serialization
failure, a lock or statement timeout) are transient too, and answered 503, but they
are about one statement, not the server, and are logged each time.

The errors arrive wrapped (SQLAlchemy's DBAPIError around psycopg's, procrastinate's
ConnectorException around psycopg's): the whole chain of causes is looked at.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import psycopg
import psycopg_pool
from sqlalchemy import exc as sa_exc

# SQLSTATEs that mean the server, not the statement: admin / crash shutdown, "the
# database system is starting up / shutting down", too many connections.
_SERVER_STATES = {"57P01", "57P02", "57P03", "53300"}


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_connection_failure(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(
        error,
        psycopg_pool.PoolTimeout | psycopg.InterfaceError | sa_exc.TimeoutError,
    ):
        return True
    if isinstance(error, psycopg.OperationalError):
        state = error.sqlstate
        # No SQLSTATE: the client library's own failure (refused, reset, closed).
        return state is None or state.startswith("08") or state in _SERVER_STATES
    return False


def database_outage(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is the database being unreachable."""
    return any(_is_connection_failure(e) for e in _chain(error))


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` is worth a 503 and a retry: an outage, or another operational
    error of the database (deadlock, serialization failure, timeout)."""
    return any(
        _is_connection_failure(e) or isinstance(e, psycopg.OperationalError) for e in _chain(error)
    )


def describe(error: BaseException) -> str:
    """The innermost driver error, on one line: what an operator needs to read."""
    innermost = list(_chain(error))[-1]
    text = " ".join(str(innermost).split())
    return f"{type(innermost).__name__}: {text}" if text else type(innermost).__name__


class OutageLog:
    """Logs the start of an outage once, counts what happens during it, and logs
    its end once: one pair of lines per outage, however many requests met it."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self.since: float | None = None
        self.count = 0

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException, consequence: str) -> None:
        self.count += 1
        if self.since is None:
            self.since = time.monotonic()
            self.logger.warning("%s unavailable (%s): %s", self.what, describe(error), consequence)

    def recovered(self, consequence: str = "") -> None:
        if self.since is None:
            return
        lasted = time.monotonic() - self.since
        count, self.since, self.count = self.count, None, 0
        self.logger.warning(
            "%s available again after %.1f s (%d failed meanwhile)%s",
            self.what,
            lasted,
            count,
            f": {consequence}" if consequence else "",
        )
