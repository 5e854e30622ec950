"""Log set-up: one line per record, JSON in production and readable elsewhere, each
carrying the id of the request it belongs to, with email addresses masked.

The request id lives in a context variable that the middleware sets, so every
record logged while a request runs (by the app, SQLAlchemy, an after-commit
callback) carries it without being passed around. The filter sits on the handler,
not on a logger, so that it sees the records of every logger that propagate to root.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from eventms.config import Settings

request_id: ContextVar[str | None] = ContextVar("eventms_request_id", default=None)

EMAIL = re.compile(r"([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask_emails(text: str) -> str:
    """`alice@example.com` -> `a***@example.com`: enough to tell who, not to write to."""
    return EMAIL.sub(r"\1***@\2", text)


class RequestContextFilter(logging.Filter):
    """Adds `request_id` to every record and masks email addresses in its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        if record.levelno >= logging.INFO:
            # Formatted once here; the formatter then finds it done (no args left).
            message = record.getMessage()
            record.msg, record.args = mask_emails(message) if "@" in message else message, None
        return True


# Attributes every LogRecord has; anything else was passed with `extra=` and is data.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        extra = {key: value for key, value in vars(record).items() if key not in _STANDARD}
        if record.exc_info:
            extra["exception"] = self.formatException(record.exc_info)
        return self.line(
            record.created,
            record.levelname,
            record.name,
            getattr(record, "request_id", None),
            record.getMessage(),
            extra,
        )

    def line(
        self,
        created: float,
        level: str,
        logger: str,
        request: str | None,
        message: str,
        extra: dict[str, Any],
    ) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
            "level": level.lower(),
            "logger": logger,
            "message": message,
            "request_id": request,
            **extra,
        }
        return orjson.dumps(entry, default=str).decode()


READABLE = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"


class ReadableFormatter(logging.Formatter):
    """`READABLE`, with the time's `strftime` done once per second, not per record
    (the access line is a record per request): the same text as logging.Formatter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self._time(record.created, record.msecs)

    def _time(self, created: float, msecs: float) -> str:
        second = int(created)
        if self._second[0] != second:
            self._second = (second, time.strftime(self.default_time_format, self.converter(second)))
        return f"{self._second[1]},{int(msecs):03d}"

    def line(
        self,
        created: float,
        level: str,
        logger: str,
        request: str | None,
        message: str,
        extra: dict[str, Any],
    ) -> str:
        """What `format` gives a record of these (`READABLE` shows no extras)."""
        msecs = int((created - int(created)) * 1000)  # as LogRecord computes it
        when = self._time(created, msecs)
        return f"{when} {level:<7} {logger} [{request}] {message}"


class TurnBufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that, inside a running event loop, writes the records of one
    loop turn together (one write for many access lines, not one each); warnings and
    worse, and records from outside a loop, are written at once, after what is held."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.hold(line, at_once=record.levelno >= logging.WARNING)

    def hold(self, line: str, *, at_once: bool = False) -> None:
        """Write `line` at the end of this loop turn (at once outside a loop)."""
        line += self.terminator
        with self.lock:  # type: ignore[union-attr]
            if not at_once:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
                if loop is not None:
                    if not self._held:
                        loop.call_soon(self.flush)
                    self._held.append(line)
                    return
            self._held.append(line)
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._held:
                held = "".join(self._held)
                self._held.clear()
                try:
                    self.stream.write(held)
                except Exception:
                    return
            super().flush()


def logging_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` dict; given to uvicorn so every worker process
    applies it too. uvicorn's own access log is replaced by the middleware's."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if settings.app_env == "production"
        else {"class": f"{__name__}.ReadableFormatter", "format": READABLE}
    )
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_context": {"()": f"{__name__}.RequestContextFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": f"{__name__}.TurnBufferedStreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_context"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            # Chatty at INFO: the embedded PostgreSQL and SMTP sink narrate every step,
            # Alembic every migration, procrastinate every periodic tick.
            "pgserver": {"level": "WARNING"},
            "alembic": {"level": "WARNING"},
            "mail.log": {"level": "WARNING"},
            "procrastinate": {"level": "WARNING"},
            # One warning per failed reconnection attempt while the database is down;
            # eventms.outages reports the outage once instead.
            "psycopg.pool": {"level": "ERROR"},
        },
    }


def lean_records() -> None:
    """Records without what no format here shows: the caller's file and line (a walk
    up the stack per record), thread, process and task names. The logging HOWTO's
    "Optimization" section names these switches; the access line is logged on every
    request, and they were half of its cost."""
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure_logging(settings: Settings) -> None:
    import logging.config

    logging.config.dictConfig(logging_config(settings))
