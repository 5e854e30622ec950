"""Demo and benchmark data: `eventms seed --events N --attendees M`.

The rows go in with `COPY`, a chunk per transaction, on two connections at once (a
million attendees in about a minute on a busy 2-core machine with the trigram indexes
to maintain, where batched INSERTs took several). Rows clashing with existing unique ones
(an email already taken, whatever its case; a location already booked that date) are
skipped, as before: the generated emails and locations carry a random run id, so a
clash is rare, and a chunk that meets one is copied again into a staging table and
moved by `INSERT … ON CONFLICT DO NOTHING` (a slower path: every row checks each
unique index before it is inserted).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from datetime import date, timedelta
from itertools import islice
from typing import Any

import psycopg
from psycopg import sql
from rich.progress import Progress

from eventms.config import Settings

FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Barbara",
    "Ken",
    "Margaret",
    "Dennis",
    "Radia",
    "Edsger",
    "Frances",
    "Donald",
    "Sophie",
    "Tim",
    "Hedy",
    "John",
    "Katherine",
    "Niklaus",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Dijkstra",
    "Allen",
    "Knuth",
    "Wilson",
    "Berners-Lee",
    "Lamarr",
    "Backus",
    "Johnson",
    "Wirth",
]
PLACES = ["Berlin", "Dhaka", "Lagos", "Lima", "Oslo", "Osaka", "Paris", "Quito", "Seoul", "Tunis"]
# Rows per COPY and per transaction: the progress bar moves once per chunk.
CHUNK = 50_000
# Connections copying at once. Most of the work is PostgreSQL's (the four indexes of
# `attendees`), done by each connection's own backend: two keep two cores busy.
COPIERS = 2

EVENT_COLUMNS = ("id", "name", "description", "date", "location", "max_attendees")
ATTENDEE_COLUMNS = ("id", "name", "email")

Row = tuple[Any, ...]


def libpq_url(settings: Settings) -> str:
    """The configured database as a libpq connection string (psycopg's own)."""
    url = settings.sqlalchemy_url().set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def _copy(
    db: psycopg.AsyncConnection[Any], table: str, columns: Sequence[str], rows: list[Row]
) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    async with db.cursor().copy(statement) as copy:
        for row in rows:
            await copy.write_row(row)


async def _insert_chunk(
    db: psycopg.AsyncConnection[Any], table: str, columns: Sequence[str], rows: list[Row]
) -> int:
    """Insert the rows, skipping those that clash with existing ones; how many went in."""
    try:
        async with db.transaction():
            await _copy(db, table, columns, rows)
        return len(rows)
    except psycopg.errors.UniqueViolation:
        pass
    staging = f"seed_{table}"
    listed = sql.SQL(", ").join(map(sql.Identifier, columns))
    async with db.transaction():
        await db.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS"
                " AS SELECT {} FROM {} WITH NO DATA"
            ).format(sql.Identifier(staging), listed, sql.Identifier(table))
        )
        await _copy(db, staging, columns, rows)
        moved = await db.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                sql.Identifier(table), listed, listed, sql.Identifier(staging)
            )
        )
        return moved.rowcount


async def _seed_table(
    connections: Sequence[psycopg.AsyncConnection[Any]],
    progress: Progress,
    *,
    table: str,
    columns: Sequence[str],
    count: int,
    row: Callable[[int], Row],
) -> int:
    """Copy `count` rows in, a chunk at a time on each connection; how many were new."""
    task = progress.add_task(table, total=count)
    numbers = iter(range(count))
    made = 0

    async def copier(db: psycopg.AsyncConnection[Any]) -> None:
        nonlocal made
        # A chunk is made whole before the next await: chunks draw their random
        # numbers in order, so that a seeding stays repeatable.
        while chunk := [row(i) for i in islice(numbers, CHUNK)]:
            # In primary key order: its index entries land on neighbouring pages.
            # (Not by name, which would go faster still but leave the table clustered
            # by name, flattering every search benchmark run on it.)
            chunk.sort(key=lambda r: r[0])
            inserted = await _insert_chunk(db, table, columns, chunk)
            made += inserted
            progress.advance(task, len(chunk))

    async with asyncio.TaskGroup() as copiers:  # one failing stops the others
        for db in connections:
            copiers.create_task(copier(db))
    return made


async def seed_database(
    settings: Settings,
    *,
    events: int,
    attendees: int,
    rng: random.Random | None = None,
    run: str | None = None,
) -> tuple[int, int]:
    """Copy the rows in; rows clashing with existing ones are skipped. `rng` and `run`
    (the tag in every email and location) make a seeding repeatable."""
    rng = rng or random.Random()
    run = run or uuid.uuid4().hex[:6]
    start = date.today() + timedelta(days=1)

    def event(i: int) -> Row:
        kind = rng.choice(["Meetup", "Summit", "Workshop", "Conf"])
        return (
            uuid.uuid4(),
            f"{kind} {i}",
            f"Demo event {i}",
            start + timedelta(days=i // len(PLACES)),
            f"{PLACES[i % len(PLACES)]} hall {run}",
            rng.randint(20, 500),
        )

    def attendee(i: int) -> Row:
        given, family = rng.choice(FIRST), rng.choice(LAST)
        return uuid.uuid4(), f"{given} {family}", f"{given}.{family}.{i}.{run}@example.com".lower()

    async with AsyncExitStack() as stack:
        connections = [
            await stack.enter_async_context(
                await psycopg.AsyncConnection.connect(libpq_url(settings), autocommit=True)
            )
            for _ in range(COPIERS)
        ]
        db = connections[0]
        with Progress() as progress:
            made_events = await _seed_table(
                connections,
                progress,
                table="events",
                columns=EVENT_COLUMNS,
                count=events,
                row=event,
            )
            made_attendees = await _seed_table(
                connections,
                progress,
                table="attendees",
                columns=ATTENDEE_COLUMNS,
                count=attendees,
                row=attendee,
            )
        if made_events or made_attendees:
            # Fresh statistics for the planner (a search plan chosen for an empty
            # table is the wrong one for a million rows), the visibility map set
            # (index-only scans), and the trigram indexes' pending lists merged.
            await db.execute("VACUUM (ANALYZE) events, attendees")
    return made_events, made_attendees
