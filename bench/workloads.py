"""The measured endpoints, the request files they cycle through, and the oversell check.

Targets are the issue's, as fractions of the bare ASGI ceiling measured in the same run.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

API = "/api/v1"
GROUP = 20  # events whose seats are offered together by the registration run
# Substrings of the names `eventms seed` makes (given + family names), 3+ characters so
# that a trigram index can serve them; each matches a few hundred of 10,000 attendees.
SEARCHES = ["love", "turi", "hopp", "torv", "lisk", "knut", "dijk", "lamar", "wirth", "grace"]


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    target: float | None  # fraction of the ceiling, None: no target in the issue
    reads: bool  # a read (repeated per cache mode), or the write run once at the end


# The original (NestJS, one node process) as fractions of the bare-ASGI ceiling on one
# uvicorn worker, measured side by side in one run (issue 10, "Proof": ceiling 49,073
# req/s). Its list answers carried 24 KB bodies: lists are compared in bytes per second.
ORIGINAL = {
    "event_by_id": 0.154,
    "event_list": 0.067,
    "attendee_by_id": 0.029,
    "attendee_search": 0.0046,
    "registration": 0.00016,
}
ORIGINAL_LIST_BYTES = 24_000
# The goals: this many times the original, per process (one worker) and with `make
# run`'s defaults (every core: here, any pass with more than one worker).
PER_PROCESS, ALL_CORES = 1.5, 3.0
BY_BYTES = {"event_list"}


def goal_factor(workers: int) -> float:
    return PER_PROCESS if workers == 1 else ALL_CORES


ENDPOINTS = [
    Endpoint("event_by_id", "GET /event/{id}", 0.15, True),
    Endpoint("event_list", "GET /event", None, True),
    Endpoint("attendee_search", "GET /attendee?name=<substring>", 0.10, True),
    Endpoint("attendee_by_id", "GET /attendee/{id}", 0.15, True),
    Endpoint("registration", "POST /registration", 0.017, False),
]


def _write(path: Path, lines: list[tuple[str, str, str]]) -> Path:
    path.write_text("".join(f"{m}\t{p}\t{b}\n" for m, p, b in lines))
    return path


def _gets(path: Path, paths: list[str]) -> Path:
    return _write(path, [("GET", p, "") for p in paths])


def prepare(dsn: str, work: Path, *, prime: int, seed: int = 7) -> dict[str, Path]:
    """Register `prime` attendees per event (so reads embed some), and write the request
    files: ids in random order, the searches, and fresh registration pairs.

    The registration pairs offer each event its free seats plus 10%, so most answers
    are 201 and the last tries are refused as full. They go round-robin over groups of
    20 events, smallest first, so that events fill up within seconds, with 32
    connections racing for the last seats of a few events: the oversell check then
    has something to check.
    """
    rng = random.Random(seed)
    with psycopg.connect(dsn, autocommit=True) as db:
        events = db.execute("SELECT id, max_attendees FROM events ORDER BY id").fetchall()
        attendees = [row[0] for row in db.execute("SELECT id FROM attendees ORDER BY id")]
        primed: list[tuple[uuid.UUID, uuid.UUID]] = []
        queues: list[list[uuid.UUID]] = []
        for event_id, capacity in events:
            taken = min(prime, capacity)
            chosen = rng.sample(attendees, min(len(attendees), capacity + capacity // 10))
            primed += [(event_id, a) for a in chosen[:taken]]
            queues.append([event_id, *chosen[taken:]])
        if primed:
            db.execute(
                "INSERT INTO registrations (id, event_id, attendee_id) "
                "SELECT gen_random_uuid(), e, a FROM unnest(%s::uuid[], %s::uuid[]) AS p(e, a)",
                ([e for e, _ in primed], [a for _, a in primed]),
            )
        db.execute("ANALYZE")
    event_ids = [str(e) for e, _ in events]
    attendee_ids = [str(a) for a in attendees]
    rng.shuffle(event_ids)
    rng.shuffle(attendee_ids)
    pairs = []
    queues.sort(key=len)
    for first in range(0, len(queues), GROUP):
        group = queues[first : first + GROUP]
        for depth in range(1, max(len(q) for q in group)):
            for queue in group:
                if depth < len(queue):
                    body = {"eventId": str(queue[0]), "attendeeId": str(queue[depth])}
                    pairs.append(
                        ("POST", f"{API}/registration", json.dumps(body, separators=(",", ":")))
                    )
    searches = [f"{API}/attendee?name={s}" for s in SEARCHES]
    return {
        "event_by_id": _gets(work / "event_by_id.tsv", [f"{API}/event/{e}" for e in event_ids]),
        "event_list": _gets(work / "event_list.tsv", [f"{API}/event"]),
        "attendee_search": _gets(work / "attendee_search.tsv", searches),
        "attendee_by_id": _gets(
            work / "attendee_by_id.tsv", [f"{API}/attendee/{a}" for a in attendee_ids[:2000]]
        ),
        "registration": _write(work / "registration.tsv", pairs),
    }


def split(requests_file: Path, warm: int, spare: int) -> tuple[Path, Path, Path]:
    """The last `warm` lines for the warm-up, the `spare` before them for a profiling
    run, the rest (from the first line, where events fill soonest) for the measured run:
    each run of registrations sends pairs nobody sent before."""
    lines = requests_file.read_text().splitlines(keepends=True)
    warm = min(warm, len(lines) // 4)
    spare = min(spare, len(lines) // 4)
    cut = len(lines) - warm - spare
    parts = lines[cut + spare :], lines[:cut], lines[cut : cut + spare]
    paths = []
    for name, part in zip(("warmup", "measured", "spare"), parts, strict=True):
        path = requests_file.with_suffix(f".{name}.tsv")
        path.write_text("".join(part or lines[-1:]))
        paths.append(path)
    return paths[0], paths[1], paths[2]


def seat_check(dsn: str) -> dict[str, int]:
    """The capacity invariants after the write run; `oversold` and `miscounted` must be 0."""
    with psycopg.connect(dsn) as db:
        row = db.execute(
            """
            SELECT count(*) FILTER (WHERE e.registered_count > e.max_attendees),
                   count(*) FILTER (WHERE coalesce(r.n, 0) > e.max_attendees),
                   count(*) FILTER (WHERE coalesce(r.n, 0) <> e.registered_count),
                   count(*) FILTER (WHERE coalesce(r.n, 0) = e.max_attendees),
                   count(*),
                   coalesce(sum(r.n), 0)
              FROM events e
              LEFT JOIN (SELECT event_id, count(*) AS n FROM registrations GROUP BY event_id) r
                ON r.event_id = e.id
            """
        ).fetchone()
    assert row is not None
    keys = ["oversold_counter", "oversold_rows", "miscounted", "full_events", "events", "rows"]
    return dict(zip(keys, (int(v) for v in row), strict=True))


def search_index(dsn: str) -> bool:
    """Whether attendee search has its trigram index (the embedded pgserver lacks pg_trgm)."""
    with psycopg.connect(dsn) as db:
        found = db.execute(
            "SELECT 1 FROM pg_indexes WHERE indexname = 'ix_attendees_search_trgm'"
        ).fetchone()
    return found is not None
