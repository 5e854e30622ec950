"""Mail throughput and latency, to a local SMTP sink.

1. 10,000 confirmation jobs queued, then drained by 1 and by 2 `eventms worker`
   processes: mails per second into the sink.
2. The SMTP hand-off alone (no database): the same messages sent 8 at a time on a
   new connection each (aiosmtplib.send) and through `Mailer` (kept connections).
3. Registrations committed one at a time through `registrations.service.register`
   while one worker runs: time from each commit to its mail in the sink (p50/p99).

Runs on an embedded PostgreSQL in ./var/bench-pg (or BENCH_DATABASE_URL, a server
URL whose `eventms_bench` database is recreated). Usage: python bench/mail.py [--jobs N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import psycopg
from aiosmtpd.controller import Controller
from sqlalchemy.engine import make_url

from eventms.config import load_settings
from eventms.db.engine import create_engine, create_sessionmaker
from eventms.embedded import EmbeddedPostgres
from eventms.loopback import free_port
from eventms.migrations import upgrade
from eventms.notifications.jobs import send_confirmation
from eventms.notifications.mailer import Mailer
from eventms.registrations.service import register

ROOT = Path(__file__).resolve().parents[1]


class Sink:
    """Records when each recipient's mail arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self.first = self.last = 0.0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.perf_counter()
        with self.lock:
            self.count += 1
            self.first = self.first or now
            self.last = now
            for rcpt in envelope.rcpt_tos:
                self.arrivals.setdefault(rcpt, now)
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count and time.monotonic() < deadline:
            time.sleep(0.02)


def fresh_database() -> str:
    server = os.environ.get("BENCH_DATABASE_URL")
    if not server:
        server = (
            EmbeddedPostgres(ROOT / "var" / "bench-pg").start().replace("/eventms?", "/postgres?")
        )
    url = make_url(server).set(drivername="postgresql+psycopg")
    with psycopg.connect(
        url.set(drivername="postgresql").render_as_string(False), autocommit=True
    ) as c:
        c.execute("DROP DATABASE IF EXISTS eventms_bench WITH (FORCE)")
        c.execute("CREATE DATABASE eventms_bench")
    bench = url.set(database="eventms_bench").render_as_string(hide_password=False)
    upgrade(bench)
    return bench


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def seed(url: str, n: int) -> list[tuple[str, str]]:
    """One big event and `n` attendees (not registered); return their (id, email)."""
    with psycopg.connect(libpq(url), autocommit=True) as c:
        c.execute("TRUNCATE events, attendees, registrations, procrastinate_jobs CASCADE")
        c.execute(
            "INSERT INTO events (id, name, date, location, max_attendees)"
            " VALUES (gen_random_uuid(), 'Bench', '2031-01-01', 'Hall', 1000000)"
        )
        tag = uuid.uuid4().hex[:6]
        c.execute(
            "INSERT INTO attendees (id, name, email) SELECT gen_random_uuid(), 'P' || n,"
            " 'p' || n || %s || '@example.com' FROM generate_series(1, %s) n",
            (f".{tag}", n),
        )
        c.execute(
            "INSERT INTO registrations (id, event_id, attendee_id)"
            " SELECT gen_random_uuid(), (SELECT id FROM events), id FROM attendees"
        )
        return [
            (str(r[0]), r[1])
            for r in c.execute(
                "SELECT r.id, a.email FROM registrations r JOIN attendees a ON a.id = r.attendee_id"
            )
        ]


async def queue(url: str, ids: list[str]) -> None:
    async with await psycopg.AsyncConnection.connect(libpq(url)) as connection:
        async with connection.transaction():
            for start in range(0, len(ids), 1000):
                await send_confirmation.configure(connection=connection).batch_defer_async(
                    *({"registration_id": i} for i in ids[start : start + 1000])
                )


def start_workers(
    url: str, port: int, count: int, concurrency: int
) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "WORKER_CONCURRENCY": str(concurrency),
    }
    return [
        subprocess.Popen(
            [sys.executable, "-m", "eventms", "worker"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(30)


def throughput(url: str, jobs: int, workers: int, concurrency: int) -> float:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        ids = [i for i, _ in seed(url, jobs)]
        asyncio.run(queue(url, ids))
        procs = start_workers(url, port, workers, concurrency)
        sink.wait_for(jobs)
        stop(procs)
        # From the first mail to the last: worker start-up (imports, migration check)
        # is not mail throughput.
        elapsed = sink.last - sink.first
    finally:
        controller.stop()
    return jobs / elapsed


async def _latency(url: str, port: int, sink: Sink, n: int) -> list[float]:
    settings = load_settings(database_url=url, _env_file=None)
    engine = create_engine(settings.sqlalchemy_url(), settings)
    maker = create_sessionmaker(engine)
    with psycopg.connect(libpq(url), autocommit=True) as c:
        c.execute("TRUNCATE events, attendees, registrations, procrastinate_jobs CASCADE")
        event = c.execute(
            "INSERT INTO events (id, name, date, location, max_attendees) VALUES"
            " (gen_random_uuid(), 'Lat', '2031-01-01', 'Hall', 100000) RETURNING id"
        ).fetchone()[0]
        people = c.execute(
            "INSERT INTO attendees (id, name, email) SELECT gen_random_uuid(), 'L' || n,"
            " 'l' || n || '@example.com' FROM generate_series(1, %s) n RETURNING id, email",
            (n,),
        ).fetchall()
    committed: dict[str, float] = {}
    for attendee_id, email in people:
        async with maker() as session:
            await register(session, event_id=event, attendee_id=attendee_id)
            await session.commit()
        committed[email] = time.perf_counter()
        await asyncio.sleep(0.02)  # a steady trickle, not a burst
    await asyncio.to_thread(sink.wait_for, n)
    await engine.dispose()
    return [sink.arrivals[e] - t for e, t in committed.items()]


def latency(url: str, n: int) -> tuple[float, float]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    procs = start_workers(url, port, 1, 4)
    time.sleep(3)  # worker started and listening
    try:
        delays = asyncio.run(_latency(url, port, sink, n))
    finally:
        stop(procs)
        controller.stop()
    cuts = statistics.quantiles(delays, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


async def _smtp_only(port: int, n: int, kept: bool) -> float:
    settings = load_settings(smtp_host="127.0.0.1", smtp_port=port, _env_file=None)
    mailer = Mailer(settings)
    slots = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "b@x.org", f"s{i}@x.org", "b"
        message.set_content("x" * 2000)
        async with slots:
            if kept:
                await mailer.send(message)
            else:
                await aiosmtplib.send(message, hostname="127.0.0.1", port=port)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    await mailer.close()
    return n / elapsed


def smtp_only(n: int) -> tuple[float, float]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        return asyncio.run(_smtp_only(port, n, False)), asyncio.run(_smtp_only(port, n, True))
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-samples", type=int, default=300)
    args = parser.parse_args()
    url = fresh_database()
    print(f"cpus: {os.cpu_count()} (shared machine: figures are indicative)")
    for workers in (1, 2):
        rate = throughput(url, args.jobs, workers, args.concurrency)
        print(
            f"{args.jobs} queued confirmations, {workers} worker(s) x {args.concurrency}:"
            f" {rate:.0f} mails/s"
        )
    fresh, kept = smtp_only(2000)
    print(
        f"SMTP hand-off alone, 2000 mails x 8 at once: {fresh:.0f} mails/s with a connection"
        f" each, {kept:.0f} mails/s on kept connections"
    )
    p50, p99 = latency(url, args.latency_samples)
    print(
        f"commit -> mailbox latency, 1 worker, {args.latency_samples} registrations:"
        f" p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    )


if __name__ == "__main__":
    main()
