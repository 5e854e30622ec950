"""The access line of every request, in one formatted write.

Through `logging`, the line cost a record, a filter, a formatter and the handler's
bookkeeping: a quarter of a cached read's CPU in the app. When the process logs as
`logging_config` sets it up (one `TurnBufferedStreamHandler` with the request
filter, a readable or JSON formatter), the line is formatted here, by that formatter,
into the text the record would have become, and held for the turn's one write.
Anywhere else (a test's own handler, another configuration) it goes through
`logging` as any record does.
"""

from __future__ import annotations

import logging
import time

from eventms.observability.logging import (
    READABLE,
    JsonFormatter,
    ReadableFormatter,
    RequestContextFilter,
    TurnBufferedStreamHandler,
    mask_emails,
)

access_log = logging.getLogger("eventms.access")


def _direct_handler(logger: logging.Logger) -> TurnBufferedStreamHandler | None:
    """The one handler the logger's records reach, if it is one whose line can be
    written directly (see above); else None."""
    found: logging.Handler | None = None
    node: logging.Logger | None = logger
    while node is not None:
        for handler in node.handlers:
            if found is not None:
                return None
            found = handler
        if not node.propagate:
            break
        node = node.parent
    if (
        type(found) is not TurnBufferedStreamHandler
        or found.level > logging.INFO
        or len(found.filters) != 1
        or type(found.filters[0]) is not RequestContextFilter
    ):
        return None
    formatter = found.formatter
    if type(formatter) is JsonFormatter or (
        type(formatter) is ReadableFormatter and formatter._fmt == READABLE
    ):
        return found
    return None


def log_access(
    request: str,
    method: str,
    path: str,
    status: int,
    elapsed: float,
    client: str,
    key: str | None,
) -> None:
    """Log the access line of a request (INFO on `eventms.access`) with its fields;
    `elapsed` in seconds. The fields' dict is made only for a formatter that shows
    them (JSON) or a handler of another configuration."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    message = f"{method} {path} {status} {elapsed * 1000:.1f}ms {client}" + (
        f" key={key}" if key else ""
    )
    handler = _direct_handler(access_log)
    formatter = handler.formatter if handler is not None else None
    if handler is None or type(formatter) is JsonFormatter:
        extra = {
            "key": key,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "client": client,
        }
        if handler is None:
            access_log.info(message, extra=extra)
            return
    else:
        extra = {}
    if "@" in message:  # as RequestContextFilter masks every record
        message = mask_emails(message)
    assert isinstance(formatter, JsonFormatter | ReadableFormatter)
    handler.hold(formatter.line(time.time(), "INFO", access_log.name, request, message, extra))
