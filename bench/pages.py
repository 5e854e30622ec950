"""Web pages against the API: requests per second of `GET /` (upcoming events, 20 a
page) and `GET /events/{id}` (one event and its signup form) against
`GET /api/v1/event/{id}` (the API's cached read), as ratios.

One `eventms serve` worker (AUTH_MODE=open) on the test engines (embedded
PostgreSQL and Redis, or TEST_DATABASE_URL / TEST_REDIS_URL), 100 upcoming events,
then each URL for `--seconds` with `--connections` keep-alive connections, wrk when
installed (else bench/loadgen.py's Python generator). The pages are rendered on
every request (no page cache): the ratio says what that costs.

Usage: python bench/pages.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import loadgen  # noqa: E402

# The tests' engines and server: the same embedded PostgreSQL and Redis set-up.
from tests.support.databases import (  # noqa: E402
    OUR_TABLES,
    fresh_test_database,
    server_url,
    truncate,
)
from tests.support.live_server import LiveServer  # noqa: E402
from tests.support.redis_servers import flush, tests_redis  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def seed(base: str, count: int) -> str:
    first = (datetime.now(UTC) + timedelta(days=10)).date()
    with httpx.Client(base_url=f"{base}/api/v1", timeout=10) as client:
        ids = []
        for n in range(count):
            body = {
                "name": f"Event {n}",
                "date": (first + timedelta(days=n)).isoformat(),
                "location": f"Hall {n}",
                "maxAttendees": 100,
            }
            made = client.post("/event", json=body)
            made.raise_for_status()
            ids.append(made.json()["result"]["id"])
        return str(ids[0])


def measure(generator: str, base: str, path: str, seconds: float, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as requests:
        requests.write(f"GET\t{path}\n")
    loadgen.run(generator, base, Path(requests.name), connections=4, duration=2, threads=1)
    load = loadgen.run(
        generator, base, Path(requests.name), connections=connections, duration=seconds, threads=2
    )
    Path(requests.name).unlink()
    return {
        "path": path,
        "rps": round(load.rps, 1),
        "p50_ms": round(load.p50_ms, 2),
        "p99_ms": round(load.p99_ms, 2),
        "errors": load.errors,
        "non_2xx": load.non_2xx,
        "bytes_per_response": round(load.bytes_per_response),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()
    generator = loadgen.pick("auto")
    database_url = fresh_test_database(server_url())
    truncate(database_url, *OUR_TABLES)
    with tests_redis() as redis_url:
        flush(redis_url)
        server = LiveServer(database_url, redis_url, workers=1, AUTH_MODE="open")
        try:
            event = seed(server.base, args.events)
            runs = {
                "api_event": measure(
                    generator, server.base, f"/api/v1/event/{event}", args.seconds, args.connections
                ),
                "page_home": measure(generator, server.base, "/", args.seconds, args.connections),
                "page_event": measure(
                    generator, server.base, f"/events/{event}", args.seconds, args.connections
                ),
            }
        finally:
            server.stop()
    api = runs["api_event"]["rps"]
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "generator": generator,
        "seconds": args.seconds,
        "connections": args.connections,
        "events": args.events,
        "runs": runs,
        "ratios_to_api_event": {
            name: round(run["rps"] / api, 3) for name, run in runs.items() if api
        },
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"pages-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Web pages against the API ({report['when']})",
        "",
        f"{generator}, {args.connections} connections, {args.seconds:g} s per URL, one"
        f" `serve` worker, {args.events} upcoming events; a 2-core machine shared with"
        " other work, so the ratios matter more than the figures.",
        "",
        "| URL | req/s | p50 ms | p99 ms | errors | non-2xx | bytes | ratio to API |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        ratio = report["ratios_to_api_event"].get(name, "")
        lines.append(
            f"| `{run['path']}` | {run['rps']} | {run['p50_ms']} | {run['p99_ms']} |"
            f" {run['errors']} | {run['non_2xx']} | {run['bytes_per_response']} | {ratio} |"
        )
    (RESULTS / f"pages-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
