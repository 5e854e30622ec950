"""Demo and benchmark data: `eventms seed --events N --attendees M`."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

from rich.progress import Progress
from sqlalchemy.dialects.postgresql import insert

from eventms.attendees.models import Attendee
from eventms.config import Settings
from eventms.db.engine import create_engine
from eventms.events.models import Event

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
BATCH = 1000


async def seed_database(settings: Settings, *, events: int, attendees: int) -> tuple[int, int]:
    """Insert the rows in batches; rows clashing with existing ones are skipped."""
    engine = create_engine(settings.sqlalchemy_url(), settings)
    rng = random.Random()
    run = uuid.uuid4().hex[:6]
    start = date.today() + timedelta(days=1)
    made_events = made_attendees = 0
    try:
        with Progress() as progress:
            task = progress.add_task("events", total=events)
            for first in range(0, events, BATCH):
                rows = [
                    {
                        "id": uuid.uuid4(),
                        "name": f"{rng.choice(['Meetup', 'Summit', 'Workshop', 'Conf'])} {i}",
                        "description": f"Demo event {i}",
                        "date": start + timedelta(days=i // len(PLACES)),
                        "location": f"{PLACES[i % len(PLACES)]} hall {run}",
                        "max_attendees": rng.randint(20, 500),
                        "registered_count": 0,
                    }
                    for i in range(first, min(first + BATCH, events))
                ]
                async with engine.begin() as connection:
                    # Count what RETURNING gives back: a multi-row INSERT's rowcount
                    # is -1 through psycopg's async driver.
                    result = await connection.execute(
                        insert(Event).values(rows).on_conflict_do_nothing().returning(Event.id)
                    )
                    made_events += len(result.all())
                progress.advance(task, len(rows))
            task = progress.add_task("attendees", total=attendees)
            for first in range(0, attendees, BATCH):
                rows = []
                for i in range(first, min(first + BATCH, attendees)):
                    given, family = rng.choice(FIRST), rng.choice(LAST)
                    rows.append(
                        {
                            "id": uuid.uuid4(),
                            "name": f"{given} {family}",
                            "email": f"{given}.{family}.{i}.{run}@example.com".lower(),
                        }
                    )
                async with engine.begin() as connection:
                    # Count what RETURNING gives back: a multi-row INSERT's rowcount
                    # is -1 through psycopg's async driver.
                    result = await connection.execute(
                        insert(Attendee)
                        .values(rows)
                        .on_conflict_do_nothing()
                        .returning(Attendee.id)
                    )
                    made_attendees += len(result.all())
                progress.advance(task, len(rows))
    finally:
        await engine.dispose()
    return made_events, made_attendees
