"""`run.py --compare-url URL`: the same workloads against another server speaking the
original's API (for instance the NestJS original), in the same run.

The other server gets the same seed data through its own API: the events and attendees
of the first pass's freshly seeded eventms database (same names, dates, capacities), then
the same primed registrations (`--prime` per event), all by POST. Its ids are kept in a
file (`--compare-ids`, by default var/bench/compare-<host>-<port>.json), so a later run
against the same server reuses them instead of seeding again, and so that every
registration run sends pairs nobody sent before (a cursor in that file).

Nothing here knows the other server's code or database: only its HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

API = "/api/v1"


def default_ids_file(work: Path, url: str) -> Path:
    host = url.split("://", 1)[-1].rstrip("/").replace(":", "-").replace("/", "_")
    return work / f"compare-{host}.json"


async def _post_all(
    base: str, path: str, bodies: list[dict[str, Any]], concurrency: int
) -> list[dict[str, Any] | None]:
    """POST every body, `concurrency` at a time; the `result` of each answer (None when
    refused), in the order of the bodies."""
    results: list[dict[str, Any] | None] = [None] * len(bodies)
    queue = list(enumerate(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def one() -> None:
            while queue:
                index, body = queue.pop()
                answer = await client.post(API + path, json=body)
                if answer.status_code in (200, 201):
                    results[index] = answer.json().get("result")

        await asyncio.gather(*(one() for _ in range(concurrency)))
    return results


def seed(base: str, dsn: str, ids_file: Path, prime: int, concurrency: int = 16) -> dict[str, Any]:
    """Copy the events, attendees and primed registrations of eventms's database `dsn`
    to the server at `base` through its API; write and return the id file."""
    started = time.monotonic()
    with psycopg.connect(dsn) as db:
        events = db.execute(
            "SELECT id, name, description, date, location, max_attendees FROM events ORDER BY id"
        ).fetchall()
        attendees = db.execute("SELECT id, name, email FROM attendees ORDER BY id").fetchall()
        registrations = db.execute("SELECT event_id, attendee_id FROM registrations").fetchall()
    event_bodies = [
        {
            "name": name,
            "description": description,
            "date": day.isoformat(),
            "location": location,
            "maxAttendees": capacity,
        }
        for _, name, description, day, location, capacity in events
    ]
    made_events = asyncio.run(_post_all(base, "/event", event_bodies, concurrency))
    made_attendees = asyncio.run(
        _post_all(
            base, "/attendee", [{"name": n, "email": e} for _, n, e in attendees], concurrency
        )
    )
    event_ids = {str(e[0]): r["id"] for e, r in zip(events, made_events, strict=True) if r}
    attendee_ids = {str(a[0]): r["id"] for a, r in zip(attendees, made_attendees, strict=True) if r}
    capacity = {event_ids[str(e[0])]: e[5] for e in events if str(e[0]) in event_ids}
    primed = [
        {"eventId": event_ids[str(e)], "attendeeId": attendee_ids[str(a)]}
        for e, a in registrations
        if str(e) in event_ids and str(a) in attendee_ids
    ]
    # Sequentially per event would be fairest to a server that oversells; a few at a
    # time keeps it within minutes on one that registers a few per second.
    made_primed = asyncio.run(_post_all(base, "/registration", primed, min(concurrency, 8)))
    document = {
        "url": base,
        "seeded_in_s": round(time.monotonic() - started, 1),
        "events": list(capacity.items()),
        "attendees": list(attendee_ids.values()),
        "primed": [
            [p["eventId"], p["attendeeId"]] for p, r in zip(primed, made_primed, strict=True) if r
        ],
        "refused": {
            "events": len(events) - len(event_ids),
            "attendees": len(attendees) - len(attendee_ids),
            "registrations": sum(1 for r in made_primed if r is None),
        },
        "pairs_used": 0,
    }
    ids_file.parent.mkdir(parents=True, exist_ok=True)
    ids_file.write_text(json.dumps(document))
    return document


def load(ids_file: Path) -> dict[str, Any] | None:
    return json.loads(ids_file.read_text()) if ids_file.exists() else None


def _gets(path: Path, paths: list[str]) -> Path:
    path.write_text("".join(f"GET\t{p}\t\n" for p in paths))
    return path


def request_files(document: dict[str, Any], work: Path, searches: list[str], seed: int = 7):
    """The compare server's request files, built like workloads.prepare builds eventms's:
    ids in random order, the same searches, and registration pairs never sent before."""
    rng = random.Random(seed)
    events = [e for e, _ in document["events"]]
    attendees = list(document["attendees"])
    event_ids, attendee_ids = list(events), list(attendees)
    rng.shuffle(event_ids)
    rng.shuffle(attendee_ids)
    taken: dict[str, set[str]] = {}
    for e, a in document["primed"]:
        taken.setdefault(e, set()).add(a)
    # Fresh pairs: per event, its free seats plus 10 %, round-robin over groups of 20
    # events, smallest first (as workloads.prepare does).
    queues = []
    for event_id, capacity in sorted(document["events"]):
        free = [
            a
            for a in rng.sample(attendees, min(len(attendees), capacity * 2))
            if a not in taken.get(event_id, ())
        ]
        queues.append(
            [event_id, *free[: max(0, capacity - len(taken.get(event_id, ()))) + capacity // 10]]
        )
    queues.sort(key=len)
    pairs = []
    for first in range(0, len(queues), 20):
        group = queues[first : first + 20]
        for depth in range(1, max(len(q) for q in group)):
            for queue in group:
                if depth < len(queue):
                    body = json.dumps(
                        {"eventId": queue[0], "attendeeId": queue[depth]}, separators=(",", ":")
                    )
                    pairs.append(f"POST\t{API}/registration\t{body}\n")
    prefix = work / "compare"
    return {
        "event_by_id": _gets(
            Path(f"{prefix}-event_by_id.tsv"), [f"{API}/event/{e}" for e in event_ids]
        ),
        "event_list": _gets(Path(f"{prefix}-event_list.tsv"), [f"{API}/event"]),
        "attendee_search": _gets(
            Path(f"{prefix}-attendee_search.tsv"), [f"{API}/attendee?name={s}" for s in searches]
        ),
        "attendee_by_id": _gets(
            Path(f"{prefix}-attendee_by_id.tsv"),
            [f"{API}/attendee/{a}" for a in attendee_ids[:2000]],
        ),
    }, pairs


def pairs_file(document: dict[str, Any], pairs: list[str], path: Path, count: int) -> Path:
    """The next `count` unsent registration pairs, as a request file."""
    start = document["pairs_used"]
    path.write_text("".join(pairs[start : start + count] or pairs[-1:]))
    return path


def advance(document: dict[str, Any], ids_file: Path, sent: int) -> None:
    """Move the cursor past the pairs a run sent (and those in flight when it stopped)."""
    document["pairs_used"] += sent
    ids_file.write_text(json.dumps(document))
