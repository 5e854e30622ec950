"""A burst of registrations on `eventms serve` as `make run` starts it, then its mails.

`eventms serve` with its embedded Redis and SMTP sink and its in-process mail workers
(on the embedded PostgreSQL in var/bench-pg, or the server of DATABASE_URL): POST
/registration for `--duration` seconds (after a warm-up, as bench/run.py), then the
wait until the confirmation mails are all in the sink's Maildir. It reports the
burst (req/s, CPU ms per request of the server's process tree and of PostgreSQL)
and the drain (seconds, CPU ms per mail), and checks that every registration made
through the API got exactly one confirmation, and no other registration one.

    python bench/burst.py [--workers 2] [--duration 10] [--env KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from eventms.loopback import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen
import services
import workloads
from services import Processes

ROOT = services.ROOT
MESSAGE_ID = re.compile(
    rb"^Message-ID:\s*<registration-confirmation\.([0-9a-f]{32})@eventms>", re.M
)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    cores = os.cpu_count() or 1
    add("--workers", type=int, default=cores, help="uvicorn workers (make run: one per core)")
    add("--connections", type=int, default=32)
    add("--duration", type=float, default=10.0)
    add("--warmup", type=float, default=2.0)
    add("--drain-timeout", type=float, default=600.0, help="seconds to wait for the mails")
    add("--env", action="append", default=[], metavar="KEY=VALUE")
    add("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    args.extra_env = dict(item.split("=", 1) for item in args.env)
    return args


def pending_mail(dsn: str) -> int:
    with psycopg.connect(dsn) as db:
        row = db.execute(
            "SELECT count(*) FROM procrastinate_jobs"
            " WHERE queue_name = 'mail' AND status IN ('todo', 'doing')"
        ).fetchone()
    return int(row[0]) if row else 0


def mailed(maildir: Path) -> Counter[str]:
    """Registration id (hex) -> confirmations in the Maildir."""
    found: Counter[str] = Counter()
    for folder in ("new", "cur"):
        for path in (maildir / folder).glob("*"):
            match = MESSAGE_ID.search(path.read_bytes())
            found[match.group(1).decode() if match else "?"] += 1
    return found


def main() -> None:
    args = _arguments()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = ROOT / "var" / "bench-burst"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    procs = Processes(work)
    with services.postgres_server() as (server_url, pg_pid, given):
        try:
            database_url = services.reset_database(server_url)
            env = {
                "DATABASE_URL": database_url,
                "DATA_DIR": str(work / "data"),
                "RATE_LIMITER_MAX_TRY": "1000000000",
                **args.extra_env,
            }
            seed = ["seed", "--events", "200", "--attendees", "10000"]
            procs.run("seed", services.eventms_argv(*seed), env, timeout=300)
            dsn = services.libpq(database_url)
            files = workloads.prepare(dsn, work, prime=10)
            warm, measured, _ = workloads.split(files["registration"], warm=2000, spare=15000)
            with psycopg.connect(dsn) as db:
                primed = {row[0] for row in db.execute("SELECT id FROM registrations")}
            port = free_port()
            argv = services.eventms_argv(
                "serve", "--port", str(port), "--workers", str(args.workers)
            )
            server = procs.serve(f"serve-w{args.workers}", argv, env, port)
            generator = loadgen.pick("auto")

            def load(requests: Path, seconds: float) -> loadgen.Load:
                return loadgen.run(
                    generator,
                    server.base,
                    requests,
                    connections=args.connections,
                    duration=seconds,
                    threads=2,
                    count_status=True,
                )

            load_before = os.getloadavg()
            created = 0
            if args.warmup > 0:
                created += int(load(warm, args.warmup).statuses.get("201", 0))
            # The measured burst starts while the warm-up's mails may still be going out,
            # as a second burst would.
            meter = services.Meter(server.pid, pg_pid, dsn, None)
            burst = load(measured, args.duration)
            cores, _ = meter.read(burst.seconds, burst.requests)
            created += int(burst.statuses.get("201", 0))
            # The drain: until no mail job is left and the sink has them all.
            drain_meter = services.Meter(server.pid, pg_pid, dsn, None)
            started = time.monotonic()
            maildir = work / "data" / "mail"
            while time.monotonic() - started < args.drain_timeout:
                if pending_mail(dsn) == 0 and sum(mailed(maildir).values()) >= created:
                    break
                time.sleep(0.5)
            drained_in = time.monotonic() - started
            drain_cores, _ = drain_meter.read(drained_in, 1)
            time.sleep(1)  # would anything else arrive?
            found = mailed(maildir)
            with psycopg.connect(dsn) as db:
                made = {row[0] for row in db.execute("SELECT id FROM registrations")} - primed
                failed = db.execute(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'"
                ).fetchone()
            expected = {registration.hex for registration in made}
            seats = workloads.seat_check(dsn)
            load_after = os.getloadavg()
        finally:
            procs.stop_all()
    mails = sum(found.values())
    result: dict[str, Any] = {
        "stamp": stamp,
        "workers": args.workers,
        "env": args.extra_env,
        "database": "DATABASE_URL" if given else "embedded pgserver",
        "load_before": load_before,
        "load_after": load_after,
        "burst": {
            "rps": burst.rps,
            "p50_ms": burst.p50_ms,
            "p99_ms": burst.p99_ms,
            "statuses": burst.statuses,
            "server_cpu_ms_per_request": 1000 * cores["server"] / burst.rps,
            "postgres_cpu_ms_per_request": 1000 * cores.get("postgres", 0.0) / burst.rps,
            "cores": cores,
        },
        "drain": {
            "seconds": drained_in,
            "mails_per_s": mails / drained_in if drained_in else 0.0,
            # CPU of the whole drain over the mails: those the burst had queued, and
            # the few sent during it, are all counted as the drain's.
            "server_cpu_ms_per_mail": 1000 * drain_cores["server"] * drained_in / max(mails, 1),
            "postgres_cpu_ms_per_mail": 1000
            * drain_cores.get("postgres", 0.0)
            * drained_in
            / max(mails, 1),
        },
        "mail": {
            "registrations_made": len(made),
            "created_201": created,
            "mails": mails,
            "registrations_mailed": len(found),
            "mailed_twice": sum(1 for n in found.values() if n > 1),
            "missing": len(expected - set(found)),
            "unexpected": len(set(found) - expected),
            "failed_jobs": int(failed[0]) if failed else 0,
        },
        "seats": seats,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"burst-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    b, d, m = result["burst"], result["drain"], result["mail"]
    print(
        f"burst: {b['rps']:.0f} req/s, server {b['server_cpu_ms_per_request']:.2f} ms/req,"
        f" PostgreSQL {b['postgres_cpu_ms_per_request']:.2f} ms/req, p99 {b['p99_ms']:.0f} ms,"
        f" {b['statuses']}\n"
        f"drain: {d['seconds']:.1f} s, {d['mails_per_s']:.0f} mails/s, server"
        f" {d['server_cpu_ms_per_mail']:.2f} ms/mail,"
        f" PostgreSQL {d['postgres_cpu_ms_per_mail']:.2f} ms/mail\n"
        f"mail: {m}\nseats: {seats}\nload {load_before} -> {load_after}\nwritten: {out}"
    )
    # Requests in flight when wrk stops are answered but not counted: up to one per
    # connection and run.
    counted = m["created_201"] <= m["registrations_made"] <= m["created_201"] + 2 * args.connections
    ok = (
        counted
        and m["mails"] == m["registrations_made"]
        and m["mailed_twice"] == m["missing"] == m["unexpected"] == m["failed_jobs"] == 0
        and seats["oversold_counter"] == seats["oversold_rows"] == seats["miscounted"] == 0
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
