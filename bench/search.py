"""Attendee search at scale (issue 10: p99 under 20 ms at 1,000,000 attendees).

Seeds N attendees (default 1,000,000) with `eventms seed` (COPY), then measures
`GET /api/v1/attendee?name=…` / `?email=…` through one `eventms serve --workers 1`
with wrk (bench/wrk.lua), for substrings that match many rows, some, a few and none,
at each connection count: req/s, p50, p99, and CPU ms per request of the server's
processes and of the PostgreSQL backends serving its database (from /proc). First
with the cache off (TTL=0: every request runs its SQL), then with it on.

    python bench/search.py [--attendees 1000000] [--connections 1,8,32] [--duration 10]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--reuse]

The database is `eventms_bench_search` (or --database) on the server of --database-url (or
BENCH_DATABASE_URL), dropped and created for the run, or on an embedded pgserver in
var/bench-search-pg when neither is given. `--reuse` keeps it when it already holds
exactly N attendees (migrations still run), so that two versions of the code can be
measured on the same rows. Results: bench/results/search-<stamp>.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen
import services
from services import ROOT, Processes, Server, tree_cpu_seconds, wait_idle

from eventms.embedded import EmbeddedPostgres, EmbeddedRedis
from eventms.loopback import free_port

DB = "eventms_bench_search"  # the default of --database
API = "/api/v1/attendee"
RESULTS = ROOT / "bench" / "results"


def kinds(attendees: int) -> dict[str, list[dict[str, str]]]:
    """Each kind of search: the query strings it cycles through. The seeded names are
    one of 18 first names and one of 18 last names; the emails are
    `first.last.<i>.<run>@example.com`."""
    rng = random.Random(10)
    few = rng.sample(range(attendees), min(50, attendees))
    return {
        # each ~1/18 of the rows (a last or first name)
        "name, many": [{"name": s} for s in ("love", "turi", "hopp", "knut", "wirth", "grace")],
        # each ~1/324 of the rows (one full name)
        "name, some": [
            {"name": s} for s in ("ada lovelace", "alan turing", "grace hopper", "tim berners")
        ],
        "name, none": [{"name": s} for s in ("zzyzx", "qwqw", "noone", "xylo")],
        "email, many": [{"email": s} for s in ("lovelace", "turing", "hopper", "knuth")],
        # one row each: `.<i>.` is one seeded attendee's number
        "email, few": [{"email": f".{i}."} for i in few],
        "email, none": [{"email": s} for s in ("nobody@", "zzyzx", "@example.org")],
        # ~1/324 of the rows: both filters
        "name and email": [
            {"name": "ada", "email": "lovelace"},
            {"name": "alan", "email": "turing"},
        ],
        # no filter: the first page of everyone, and the count of the whole table
        "all": [{}],
    }


def database(args: argparse.Namespace) -> tuple[str, str, EmbeddedPostgres | None]:
    """(the bench database's SQLAlchemy URL, where it is, the embedded server or None);
    recreated unless --reuse finds it holding exactly the attendees asked for."""
    embedded = None
    server = args.database_url or os.environ.get("BENCH_DATABASE_URL")
    if server:
        where = f"PostgreSQL at {make_url(server).host}:{make_url(server).port or 5432}"
    else:
        embedded = EmbeddedPostgres(ROOT / "var" / "bench-search-pg")
        server = embedded.start()
        where = "embedded pgserver (var/bench-search-pg)"
    maintenance = make_url(server).set(drivername="postgresql", database="postgres")
    bench = make_url(server).set(drivername="postgresql+psycopg", database=args.database)
    with psycopg.connect(maintenance.render_as_string(False), autocommit=True) as db:
        with db.cursor() as cursor:
            version = cursor.execute("SHOW server_version").fetchone()
            exists = cursor.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (args.database,)
            )
            found = exists.fetchone() is not None
        where += f", version {version[0] if version else '?'}"
        if found and args.reuse and _attendees(bench.render_as_string(False)) == args.attendees:
            return bench.render_as_string(False), where, embedded
        db.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{args.database}"')
    return bench.render_as_string(False), where, embedded


def _attendees(url: str) -> int | None:
    try:
        with psycopg.connect(services.libpq(url)) as db:
            row = db.execute("SELECT count(*) FROM attendees").fetchone()
    except psycopg.Error:
        return None
    return int(row[0]) if row else None


def backends_cpu(dsn: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to the database of `dsn` (but
    this connection): the server's pool, whose work is the searches'."""
    with psycopg.connect(dsn, autocommit=True) as db:
        rows = db.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return {pid: tree_cpu_seconds(pid) for (pid,) in rows}


def request_file(work: Path, name: str, queries: list[dict[str, str]]) -> Path:
    path = work / f"{name.replace(', ', '-').replace(' ', '-')}.tsv"
    lines = [f"GET\t{API}{'?' if q else ''}{urlencode(q, quote_via=quote)}\t" for q in queries]
    path.write_text("\n".join(lines) + "\n")
    return path


def totals(base: str, queries: list[dict[str, str]]) -> list[int]:
    """meta.total of each query (one request each, before the runs)."""
    found = []
    with httpx.Client(base_url=base, timeout=120) as http:
        for query in queries:
            answer = http.get(API, params=query)
            answer.raise_for_status()
            found.append(answer.json()["meta"]["total"])
    return found


def measure(
    server: Server, dsn: str, requests: Path, connections: int, args: argparse.Namespace
) -> dict[str, Any]:
    def load(seconds: float) -> loadgen.Load:
        return loadgen.run(
            "wrk",
            server.base,
            requests,
            connections=connections,
            duration=seconds,
            threads=2,
            count_status=True,
        )

    wait_idle(server.pid)
    if args.warmup > 0:
        load(args.warmup)
        wait_idle(server.pid)
    load_before = os.getloadavg()[0]
    server_cpu = tree_cpu_seconds(server.pid)
    pg_cpu = backends_cpu(dsn)
    done = load(args.duration)
    server_used = tree_cpu_seconds(server.pid) - server_cpu
    pg_used = sum(cpu - pg_cpu.get(pid, 0.0) for pid, cpu in backends_cpu(dsn).items())
    n = max(1, done.requests)
    return {
        "connections": connections,
        "requests": done.requests,
        "rps": round(done.rps, 1),
        "p50_ms": round(done.p50_ms, 2),
        "p99_ms": round(done.p99_ms, 2),
        "server_cpu_ms_per_request": round(1000 * server_used / n, 3),
        "pg_cpu_ms_per_request": round(1000 * pg_used / n, 3),
        "statuses": done.statuses,
        "errors": done.errors,
        "load_1min_before": round(load_before, 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="eventms-bench-search-"))
    (work / "metrics").mkdir()
    processes = Processes(work)
    redis = EmbeddedRedis(work / "redis")
    url, where, embedded = database(args)
    dsn = services.libpq(url)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.platform()}, shared with other work",
        "database": where,
        "attendees": args.attendees,
        "load_before": list(os.getloadavg()),
    }
    try:
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": redis.start(),
            "DATA_DIR": str(ROOT / "var" / "bench-search"),
            "RATE_LIMITER_MAX_TRY": "1000000000",
            "WORKER_IN_PROCESS": "false",
            "LOG_LEVEL": "warning",
            "APP_ENV": "test",
            "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
        }
        processes.run("migrate", services.eventms_argv("migrate"), env, timeout=600)
        present = _attendees(url)
        if present != args.attendees:
            seed = ["seed", "--events", str(args.events), "--attendees", str(args.attendees)]
            started = time.perf_counter()
            processes.run("seed", services.eventms_argv(*seed), env, timeout=3600)
            report["seed_seconds"] = round(time.perf_counter() - started, 1)
            report["load_after_seed"] = list(os.getloadavg())
            print(f"seeded {args.attendees:,} attendees in {report['seed_seconds']} s", flush=True)
        else:
            report["seed_seconds"] = None  # reused
        with psycopg.connect(dsn) as db:
            report["trigram_index"] = (
                db.execute(
                    "SELECT 1 FROM pg_indexes WHERE indexname = 'ix_attendees_search_trgm'"
                ).fetchone()
                is not None
            )
        searches = kinds(args.attendees)
        files = {name: request_file(work, name, queries) for name, queries in searches.items()}
        report["runs"] = []
        for cache in args.cache:
            port = free_port()
            argv = services.eventms_argv("serve", "--port", str(port), "--workers", "1")
            ttl = {"TTL": "0"} if cache == "off" else {"TTL": "3600"}
            server = processes.serve(f"serve-cache-{cache}", argv, {**env, **ttl}, port)
            try:
                for name, queries in searches.items():
                    if args.only and name not in args.only:
                        continue
                    found = totals(server.base, queries)
                    for connections in args.connections:
                        figures = measure(server, dsn, files[name], connections, args)
                        one = {"kind": name, "cache": cache, "totals": found, **figures}
                        report["runs"].append(one)
                        print(line(one), flush=True)
            finally:
                processes.stop(server)
    finally:
        processes.stop_all()
        redis.stop()
        if embedded is not None:
            embedded.stop()
    report["load_after"] = list(os.getloadavg())
    return report


def line(run: dict[str, Any]) -> str:
    matched = sorted(set(run["totals"]))
    shown = f"{matched[0]:,}" if len(matched) == 1 else f"{matched[0]:,} to {matched[-1]:,}"
    figures = [f"{run['rps']:,.1f}"]
    if run["requests"]:
        figures += [f"{run[k]:.1f}" for k in ("p50_ms", "p99_ms")]
        figures += [f"{run[k]:.2f}" for k in ("server_cpu_ms_per_request", "pg_cpu_ms_per_request")]
    else:  # not one answer within the run
        figures += ["none in run", "none in run", "-", "-"]
    failed = sum(int(v) for k, v in run["statuses"].items() if k != "200")
    return (
        f"| {run['kind']} | {shown} | {run['cache']} | {run['connections']} "
        f"| {' | '.join(figures)} | {run['requests']:,} | {failed} | {run['errors']} "
        f"| {run['load_1min_before']:.1f} → {run['load_1min_after']:.1f} |"
    )


def markdown(report: dict[str, Any], args: argparse.Namespace) -> str:
    seed = report["seed_seconds"]
    seeded = f"seeded in {seed} s" if seed is not None else "reused (seeded by an earlier run)"
    head = [
        f"# bench/search.py, {report['when']}",
        "",
        f"{report['machine']}; load average (1/5/15 min) at start "
        f"{' / '.join(f'{x:.2f}' for x in report['load_before'])}, at end "
        f"{' / '.join(f'{x:.2f}' for x in report['load_after'])}.",
        "",
        f"- database: {report['database']}; trigram indexes: "
        f"{'yes' if report['trigram_index'] else 'no (no pg_trgm)'}",
        f"- {report['attendees']:,} attendees, {seeded}",
        f"- `eventms serve --workers 1`, wrk (2 threads), {args.duration:g} s per run after "
        f"{args.warmup:g} s warm-up; cache off: TTL=0; cache on: TTL=3600, warmed",
        "- CPU ms/req: the server's processes, and the PostgreSQL backends connected to the "
        "bench database (from /proc; not the short-lived parallel query workers)",
        "",
        "| search | rows matched | cache | conns | req/s | p50 ms | p99 ms "
        "| server CPU ms/req | pg CPU ms/req | requests | non-200 | timeouts, errors "
        "| load 1 min |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    return "\n".join(head + [line(r) for r in report["runs"]]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--attendees", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--connections", default="1,8,32")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--cache", default="off,on", help="off, on, or off,on")
    parser.add_argument("--only", help="search kinds to run, separated by ';'")
    parser.add_argument("--database-url", help="a PostgreSQL server (default: embedded)")
    parser.add_argument("--database", default=DB, help=f"its name (default {DB})")
    parser.add_argument("--reuse", action="store_true", help="keep a database already seeded")
    parser.add_argument("--label", default="", help="a suffix for the result files")
    args = parser.parse_args()
    args.connections = [int(c) for c in args.connections.split(",")]
    args.cache = args.cache.split(",")
    args.only = set(args.only.split(";")) if args.only else set()
    loadgen.pick("wrk")  # the figures are wrk's: refuse to run without it
    report = run(args)
    report["arguments"] = {
        k: v if not isinstance(v, set) else sorted(v) for k, v in vars(args).items()
    }
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}{'-' + args.label if args.label else ''}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"search-{stamp}.json").write_text(json.dumps(report, indent=1) + "\n")
    (RESULTS / f"search-{stamp}.md").write_text(markdown(report, args))
    print(f"written: bench/results/search-{stamp}.md and .json")


if __name__ == "__main__":
    main()
