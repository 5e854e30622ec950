"""Product-layer figures (issues 12 and 13), each as a ratio measured in one run:

- the cost of checking an API key on `GET /api/v1/event/{id}` (cached): a key with
  `attendees:read` against anonymous callers, in AUTH_MODE=keys (server CPU ms per
  request from /proc, and requests per second);
- signups per second on a full event (each joins the waiting list) against an open
  one (each registers);
- the promotion rate: N racing cancellations on a full event with N people waiting.

    python bench/product.py [--requests 2000] [--signups 300] [--cancellations 100]

One `eventms serve --workers 1` on a fresh database (DATABASE_URL's server, or an
embedded PostgreSQL), the in-process mail worker off; an httpx load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from services import ROOT, Processes, reset_database, tree_cpu_seconds

from eventms.embedded import EmbeddedPostgres, EmbeddedRedis
from eventms.loopback import free_port

ADMIN = "emsk_bench-" + secrets.token_urlsafe(24)


async def burst(
    base: str, requests: list[tuple[str, str, Any]], headers: dict[str, str], concurrency: int
) -> tuple[float, list[int]]:
    """Send every (method, path, json) with `concurrency` in flight; (seconds, statuses)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    statuses: list[int] = []
    queue = list(reversed(requests))
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as http:

        async def worker() -> None:
            while queue:
                method, path, body = queue.pop()
                statuses.append((await http.request(method, path, json=body)).status_code)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, statuses


def measured(server_pid: int, seconds_and_statuses: tuple[float, list[int]]) -> dict[str, Any]:
    seconds, statuses = seconds_and_statuses
    return {
        "seconds": round(seconds, 3),
        "per_second": round(len(statuses) / seconds, 1),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="eventms-bench-product-"))
    processes = Processes(data)
    try:
        if os.environ.get("DATABASE_URL"):
            database = reset_database(os.environ["DATABASE_URL"])
        else:
            database = EmbeddedPostgres(data / "pg").start()
        redis = EmbeddedRedis(data / "redis")
        redis_url = redis.start()
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database,
            "REDIS_URL": redis_url,
            "AUTH_MODE": "keys",
            "ADMIN_API_KEY": ADMIN,
            "WORKER_IN_PROCESS": "false",
            "RATE_LIMITER_MAX_TRY": "1000000000",
            "SIGNUP_RATE_LIMIT_MAX_TRY": "1000000000",
            "LOG_LEVEL": "warning",
            "DATA_DIR": str(data),
            "APP_ENV": "test",
            "PROMETHEUS_MULTIPROC_DIR": str(data / "metrics"),
        }
        server = processes.serve(
            "eventms",
            [sys.executable, "-m", "eventms", "serve", "--port", str(port), "--workers", "1"],
            env,
            port,
        )
        base = f"http://127.0.0.1:{port}/api/v1"
        admin = {"Authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient(base_url=base, headers=admin, timeout=30) as http:
            made = await http.post("/keys", json={"name": "reader", "scopes": ["attendees:read"]})
            reader = {"Authorization": f"Bearer {made.json()['result']['token']}"}
            event = (
                await http.post(
                    "/event",
                    json={
                        "name": "Bench",
                        "date": "2031-01-01",
                        "location": "A",
                        "maxAttendees": 100,
                    },
                )
            ).json()["result"]
        results: dict[str, Any] = {}

        # 1. Key check cost on a cached by-id read: anonymous vs a key, alternated.
        read = [("GET", f"/event/{event['id']}", None)] * args.requests
        for who, headers in (("anonymous", {}), ("key", reader)) * 2:
            await burst(base, read[: args.requests // 10], headers, 16)  # warm
            before = tree_cpu_seconds(server.pid)
            outcome = measured(server.pid, await burst(base, read, headers, 16))
            outcome["server_cpu_ms_per_request"] = round(
                (tree_cpu_seconds(server.pid) - before) * 1000 / args.requests, 3
            )
            results.setdefault(f"read_{who}", []).append(outcome)

        # 2. Signups: an open event vs a full one (each signup joins the waiting list).
        async with httpx.AsyncClient(base_url=base, headers=admin, timeout=30) as http:
            open_event = (
                await http.post(
                    "/event",
                    json={
                        "name": "Open",
                        "date": "2031-02-01",
                        "location": "B",
                        "maxAttendees": 100_000,
                    },
                )
            ).json()["result"]
            full_event = (
                await http.post(
                    "/event",
                    json={
                        "name": "Full",
                        "date": "2031-03-01",
                        "location": "C",
                        "maxAttendees": 1,
                    },
                )
            ).json()["result"]
            await http.post(
                f"/event/{full_event['id']}/signup",
                json={"name": "First", "email": "first@example.com"},
            )
        for name, target in (("signup_open", open_event), ("signup_full", full_event)):
            signups = [
                (
                    "POST",
                    f"/event/{target['id']}/signup",
                    {"name": f"P{n}", "email": f"{name}-{n}@example.com"},
                )
                for n in range(args.signups)
            ]
            results[name] = measured(server.pid, await burst(base, signups, {}, 16))

        # 3. Promotion: N registered, N waiting, N racing cancellations.
        async with httpx.AsyncClient(base_url=base, headers=admin, timeout=60) as http:
            n = args.cancellations
            race = (
                await http.post(
                    "/event",
                    json={
                        "name": "Race",
                        "date": "2031-04-01",
                        "location": "D",
                        "maxAttendees": n,
                    },
                )
            ).json()["result"]
            held = []
            for i in range(2 * n):
                answer = await http.post(
                    f"/event/{race['id']}/signup",
                    json={"name": f"R{i}", "email": f"race-{i}@example.com"},
                )
                if answer.json()["result"]["status"] == "registered":
                    held.append(answer.json()["result"]["registrationId"])
        cancels = [("DELETE", f"/registration/{rid}", None) for rid in held]
        outcome = measured(server.pid, await burst(base, cancels, admin, 16))
        async with httpx.AsyncClient(base_url=base, headers=admin, timeout=30) as http:
            after = (await http.get(f"/event/{race['id']}")).json()["result"]
        outcome["promoted"] = after["registeredCount"]
        outcome["still_waiting"] = after["waitlistCount"]
        outcome["promotions_per_second"] = round(after["registeredCount"] / outcome["seconds"], 1)
        results["promotion"] = outcome
        return results
    finally:
        processes.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--signups", type=int, default=300)
    parser.add_argument("--cancellations", type=int, default=100)
    args = parser.parse_args()
    load = os.getloadavg()
    results = asyncio.run(run(args))
    anon = results["read_anonymous"]
    key = results["read_key"]
    summary = {
        "key_vs_anonymous_cpu": round(
            sum(r["server_cpu_ms_per_request"] for r in key)
            / sum(r["server_cpu_ms_per_request"] for r in anon),
            3,
        ),
        "key_vs_anonymous_rps": round(
            sum(r["per_second"] for r in key) / sum(r["per_second"] for r in anon), 3
        ),
        "signup_full_vs_open_rps": round(
            results["signup_full"]["per_second"] / results["signup_open"]["per_second"], 3
        ),
    }
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_before": load,
        "load_after": os.getloadavg(),
        "summary": summary,
        "results": results,
    }
    out = ROOT / "bench" / "results" / f"product-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
