"""Check-ins per second with 32 racing scanners, and the attendees CSV export's rows
per second and the server's peak memory, through a live `eventms serve`.

1. 4,000 tickets, each scanned twice (two doors), by 32 scanners pulling from one
   queue: scans per second, p50/p99 latency, and that every ticket got exactly one
   201 (its other scan a 409).
2. `GET /event/{id}/attendees.csv` of events with 10,000 and 100,000 registrations
   (seeded by SQL): rows per second and the server's peak RSS during each export
   against its RSS before (constant memory: the two peaks match).

Runs on an embedded PostgreSQL in ./var/bench-pg (or BENCH_DATABASE_URL, a server
URL whose `eventms_bench_tickets` database is recreated) and an embedded Redis.
Usage: python bench/tickets.py [--tickets N] [--rows N]; writes bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from eventms.embedded import EmbeddedPostgres, EmbeddedRedis
from eventms.migrations import upgrade

ROOT = Path(__file__).resolve().parents[1]
DB = "eventms_bench_tickets"
SCANNERS = 32


def database() -> str:
    server = os.environ.get("BENCH_DATABASE_URL") or EmbeddedPostgres(
        ROOT / "var" / "bench-pg"
    ).start().replace("/eventms?", "/postgres?")
    url = make_url(server).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(False), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{DB}"')
    bench = url.set(database=DB).render_as_string(False)
    upgrade(bench)
    return bench


def seed_event(dsn: str, name: str, registrations: int) -> str:
    """An event with `registrations` attendees registered, by SQL in one transaction
    (ticket codes from the column's default); its id."""
    with psycopg.connect(dsn) as db:
        # Without the triggers (the seat counter would update the event row once per
        # row, a chain of 100,000 versions of one row): the counter is set after.
        db.execute("SET LOCAL session_replication_role = replica")
        event_id = db.execute(
            "INSERT INTO events (id, name, date, max_attendees) VALUES"
            " (gen_random_uuid(), %s, '2030-06-01', %s) RETURNING id",
            (name, registrations + 1),
        ).fetchone()[0]  # type: ignore[index]
        db.execute(
            """
            WITH people AS (
                INSERT INTO attendees (id, name, email)
                SELECT gen_random_uuid(), 'Attendee ' || i || ', "guest"',
                       %(prefix)s || i || '@example.com'
                  FROM generate_series(1, %(n)s) AS i
                RETURNING id)
            INSERT INTO registrations (id, event_id, attendee_id)
            SELECT gen_random_uuid(), %(event)s, id FROM people
            """,
            {"n": registrations, "event": event_id, "prefix": f"{name.lower()}-"},
        )
        db.execute(
            "UPDATE events SET registered_count = %s WHERE id = %s", (registrations, event_id)
        )
    return str(event_id)


def serve(dsn: str, redis_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "REDIS_URL": redis_url,
        "APP_ENV": "test",
        "WORKER_IN_PROCESS": "false",
        "RATE_LIMITER_MAX_TRY": "100000000",
        "LOG_LEVEL": "warning",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="eventms-bench-metrics-"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "eventms", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(ROOT / "var" / "bench-tickets-server.log").open("wb"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start: see var/bench-tickets-server.log")


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (uvicorn's worker), in KiB."""
    total = 0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


async def scans(base: str, codes: list[str]) -> dict[str, Any]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for code in codes:
        queue.put_nowait(code)
        queue.put_nowait(code)  # the second door
    latencies: list[float] = []
    outcomes: Counter[int] = Counter()
    winners: Counter[str] = Counter()

    async def scanner(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            code = queue.get_nowait()
            started = time.perf_counter()
            response = await http.post("/api/v1/checkin", json={"code": code})
            latencies.append(time.perf_counter() - started)
            outcomes[response.status_code] += 1
            if response.status_code == 201:
                winners[code] += 1

    limits = httpx.Limits(max_connections=SCANNERS, max_keepalive_connections=SCANNERS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        started = time.perf_counter()
        await asyncio.gather(*(scanner(http) for _ in range(SCANNERS)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "scanners": SCANNERS,
        "tickets": len(codes),
        "scans": len(latencies),
        "seconds": round(seconds, 2),
        "scans_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "statuses": dict(outcomes),
        "every_ticket_in_exactly_once": len(winners) == len(codes) and set(winners.values()) == {1},
    }


def export(base: str, event_id: str, pid: int) -> dict[str, Any]:
    before = rss_kib(pid)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    lines = size = 0
    started = time.perf_counter()
    with httpx.stream("GET", f"{base}/api/v1/event/{event_id}/attendees.csv", timeout=300) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\r\n")
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    rows = lines - 1  # the header (the seeded names hold no line break)
    return {
        "rows": rows,
        "bytes": size,
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        "rss_before_mib": round(before / 1024, 1),
        "rss_peak_mib": round(peak / 1024, 1),
        "rss_growth_mib": round((peak - before) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=4000)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    dsn = database()
    doors = seed_event(dsn, "Doors", args.tickets)
    small = seed_event(dsn, "Small", args.rows // 10)
    large = seed_event(dsn, "Large", args.rows)
    with psycopg.connect(dsn) as db:
        codes = [
            row[0]
            for row in db.execute(
                "SELECT ticket_code FROM registrations WHERE event_id = %s", (doors,)
            )
        ]
    redis = EmbeddedRedis(ROOT / "var" / "bench-tickets-redis")
    redis_url = redis.start()
    port = 18000 + os.getpid() % 1000
    server = serve(dsn, redis_url, port)
    base = f"http://127.0.0.1:{port}"
    try:
        results: dict[str, Any] = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{os.cpu_count()} cores, shared with other engineers' work",
            "server": "eventms serve --workers 1, embedded PostgreSQL and Redis on the same host",
            "checkins": asyncio.run(scans(base, codes)),
            "export_small": export(base, small, server.pid),
            "export_large": export(base, large, server.pid),
        }
    finally:
        server.terminate()
        server.wait(30)
        redis.stop()
    print(json.dumps(results, indent=2))
    out = ROOT / "bench" / "results" / f"tickets-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
