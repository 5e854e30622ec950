"""Integrations: what an Idempotency-Key costs, and how fast webhooks go out.

1. `POST /api/v1/registration` through a live `eventms serve` (1 process, no
   in-process worker), 8 at a time, in alternating rounds with and without an
   `Idempotency-Key` (a new key per request): requests per second, and the ratio.
2. Webhook deliveries queued straight into the job table (N registrations' worth),
   drained by one `eventms worker` (WORKER_CONCURRENCY 4) to a loopback receiver
   (a bare asyncio HTTP server in this process): deliveries per second, to 1
   endpoint (bounded by WEBHOOK_ENDPOINT_CONCURRENCY, 2) and spread over 4.

Runs on an embedded PostgreSQL in ./var/bench-pg (or BENCH_DATABASE_URL's server,
whose `eventms_bench` database is recreated). Usage:
python bench/integrations.py [--requests N] [--deliveries N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from eventms.webhooks.jobs import PRIORITY, deliver_webhook
from eventms.webhooks.signing import new_secret
from mail import fresh_database, libpq

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def seed(url: str, attendees: int) -> tuple[str, list[str]]:
    with psycopg.connect(libpq(url), autocommit=True) as c:
        c.execute(
            "TRUNCATE events, attendees, registrations, webhook_endpoints, idempotency_keys,"
            " procrastinate_jobs CASCADE"
        )
        event = c.execute(
            "INSERT INTO events (id, name, date, location, max_attendees)"
            " VALUES (gen_random_uuid(), 'Bench', '2031-01-01', 'Hall', 1000000) RETURNING id"
        ).fetchone()
        assert event is not None
        c.execute(
            "INSERT INTO attendees (id, name, email) SELECT gen_random_uuid(), 'P' || n,"
            " 'p' || n || '@bench.example' FROM generate_series(1, %s) n",
            (attendees,),
        )
        ids = [str(r[0]) for r in c.execute("SELECT id FROM attendees ORDER BY id")]
    return str(event[0]), ids


def env_for(url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "APP_ENV": "test",
        "WORKER_IN_PROCESS": "false",
        "RATE_LIMITER_MAX_TRY": "100000000",
        "LOG_LEVEL": "warning",
        "DATA_DIR": str(ROOT / "var" / "bench-integrations"),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": "9",  # no mail is sent: the worker only takes the webhook queue
        **extra,
    }


def serve(url: str, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "eventms", "serve", "--port", str(port), "--workers", "1"],
        env=env_for(url),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not become ready")


async def _round(base: str, event: str, attendees: list[str], keyed: bool) -> float:
    queue = list(attendees)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def one_client() -> None:
            while queue:
                attendee = queue.pop()
                headers = {"Idempotency-Key": uuid.uuid4().hex} if keyed else {}
                answer = await http.post(
                    "/api/v1/registration",
                    json={"eventId": event, "attendeeId": attendee},
                    headers=headers,
                )
                assert answer.status_code == 201, answer.text

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(8)))
        return len(attendees) / (time.perf_counter() - started)


def idempotency_overhead(url: str, requests: int, rounds: int = 3) -> dict[str, Any]:
    event, attendees = seed(url, requests * 2 * rounds + 100)
    port = free_port()
    server = serve(url, port)
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(_round(base, event, attendees[:100], False))  # warm-up
        attendees = attendees[100:]
        plain, keyed = [], []
        for n in range(rounds):
            chunk = attendees[n * 2 * requests : (n + 1) * 2 * requests]
            plain.append(asyncio.run(_round(base, event, chunk[:requests], False)))
            keyed.append(asyncio.run(_round(base, event, chunk[requests:], True)))
    finally:
        server.terminate()
        server.wait(15)
    without, with_key = sum(plain) / rounds, sum(keyed) / rounds
    return {
        "requests_per_round": requests,
        "rounds": rounds,
        "without_key_rps": [round(r, 1) for r in plain],
        "with_key_rps": [round(r, 1) for r in keyed],
        "ratio_with_over_without": round(with_key / without, 3),
    }


class Receiver:
    """A bare HTTP/1.1 server: reads each request, answers 200 at once, counts."""

    def __init__(self) -> None:
        self.count = 0
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self.loop.run_until_complete(server.serve_forever())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.count += 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def start(self) -> Receiver:
        self.thread.start()
        time.sleep(0.2)
        return self


async def _queue_deliveries(url: str, endpoints: list[str], count: int) -> None:
    body = json.dumps(
        {"type": "registration.created", "timestamp": datetime.now(UTC).isoformat(), "data": {}}
    )
    async with await psycopg.AsyncConnection.connect(libpq(url)) as connection:
        async with connection.transaction():
            rows = await connection.execute(
                "INSERT INTO webhook_deliveries (id, endpoint_id, event_type, body)"
                " SELECT gen_random_uuid(), (%s::uuid[])[1 + n %% %s], 'registration.created', %s"
                " FROM generate_series(0, %s - 1) n RETURNING id, endpoint_id",
                (endpoints, len(endpoints), body, count),
            )
            jobs = [
                {"delivery_id": str(d), "endpoint_id": str(e)} for d, e in await rows.fetchall()
            ]
            for start in range(0, len(jobs), 1000):
                await deliver_webhook.configure(
                    connection=connection, priority=PRIORITY
                ).batch_defer_async(*jobs[start : start + 1000])


def webhook_throughput(url: str, deliveries: int, endpoint_count: int) -> float:
    receiver = Receiver().start()
    with psycopg.connect(libpq(url), autocommit=True) as c:
        c.execute("TRUNCATE webhook_endpoints, procrastinate_jobs CASCADE")
        endpoints = [
            str(
                c.execute(
                    "INSERT INTO webhook_endpoints (id, url, events, secret)"
                    " VALUES (gen_random_uuid(), %s, ARRAY['*'], %s) RETURNING id",
                    (f"http://127.0.0.1:{receiver.port}/hook/{n}", new_secret()),
                ).fetchone()[0]  # type: ignore[index]
            )
            for n in range(endpoint_count)
        ]
    asyncio.run(_queue_deliveries(url, endpoints, deliveries))
    worker = subprocess.Popen(
        [sys.executable, "-m", "eventms", "worker", "--concurrency", "4"],
        env=env_for(url),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while receiver.count == 0:
            time.sleep(0.01)
        started, first = time.perf_counter(), receiver.count
        deadline = time.monotonic() + 900
        with psycopg.connect(libpq(url), autocommit=True) as c:
            while time.monotonic() < deadline:
                row = c.execute(
                    "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"
                ).fetchone()
                if row is not None and row[0] >= deliveries:
                    break
                time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(20)
    return (deliveries - first) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--deliveries", type=int, default=2000)
    args = parser.parse_args()
    url = fresh_database()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "database": "BENCH_DATABASE_URL" if os.environ.get("BENCH_DATABASE_URL") else "embedded",
        "note": "shared 2-core machine: figures are indicative",
    }
    results["idempotency"] = idempotency_overhead(url, args.requests)
    print(f"Idempotency-Key on POST /registration: {results['idempotency']}")
    results["webhooks"] = {}
    for endpoints in (1, 4):
        rate = webhook_throughput(url, args.deliveries, endpoints)
        results["webhooks"][f"{endpoints}_endpoints_per_s"] = round(rate, 1)
        print(f"{args.deliveries} deliveries, {endpoints} endpoint(s), 1 worker x 4: {rate:.0f}/s")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"integrations-{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
