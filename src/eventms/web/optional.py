"""What the pages show of features that may not be installed yet: tickets (codes,
check-in, `checkedInCount`), QR codes (segno) and the attendees CSV export. Each is
looked up once; where one is missing, the pages leave out what depends on it."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from types import ModuleType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession


@cache
def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def ticket_code(registration: Any) -> str | None:
    code = getattr(registration, "ticket_code", None)
    return code if isinstance(code, str) else None


def checked_in_count(event: Any) -> int | None:
    count = getattr(event, "checked_in_count", None)
    return count if isinstance(count, int) else None


def qr_svg_data_uri(code: str) -> str | None:
    """The ticket's QR code as an SVG data URI, when segno is installed."""
    segno = _module("segno")
    if segno is None:
        return None
    return str(segno.make_qr(code, error="m").svg_data_uri(scale=6, border=4))


CheckIn = Callable[..., Awaitable[Any]]


def check_in_service() -> CheckIn | None:
    """`tickets.service.check_in(session, code=, event_id=)`, when tickets exist."""
    tickets = _module("eventms.tickets.service")
    return getattr(tickets, "check_in", None) if tickets else None


def has_checkin() -> bool:
    return check_in_service() is not None


def has_csv_export() -> bool:
    return _module("eventms.exports.attendees_csv") is not None


def attendees_csv(engine: AsyncEngine, event_id: uuid.UUID) -> AsyncIterator[bytes] | None:
    module = _module("eventms.exports.attendees_csv")
    return module.attendee_rows(engine, event_id) if module else None


def csv_file_name(event_name: str) -> str:
    module = _module("eventms.exports.attendees_csv")
    return str(module.file_name(event_name)) if module else "attendees.csv"


async def check_in(session: AsyncSession, *, code: str, event_id: uuid.UUID | None) -> Any:
    service = check_in_service()
    if service is None:
        raise RuntimeError("check-in is not installed")
    return await service(session, code=code, event_id=event_id)
