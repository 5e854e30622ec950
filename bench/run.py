"""eventms load benchmark: each endpoint as a fraction of a bare ASGI ceiling.

For each worker count, one pass: a fresh database seeded by `eventms seed`; the ceiling
(a bare ASGI app under the same uvicorn set-up); the read endpoints on `eventms serve`
(once per cache mode); POST /registration on fresh pairs, then a check that no event
is oversold; the ceiling again. Results: bench/results/<stamp>.{json,md}.

    python bench/run.py [--workers 1,2] [--duration 10] [--profile [missed|KEY,...]]

Every run records the server's CPU ms per request (its process tree, from /proc), and
PostgreSQL's and Redis's when their pids are known. Each endpoint is judged against
issue 10's goal: the original's figure (a fraction of the one-worker ceiling) times 1.5
on one worker, times 3 with more. `--compare-url URL [--compare-pid PID]` also runs the
same workloads against another server of the original's API in every pass (seeded
through its API from the first pass's data) and reports each eventms run as a ratio to
it; `--redis-url` points `eventms serve` at a real Redis (a dedicated db: it is flushed).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

from eventms.loopback import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare
import loadgen
import report
import services
import spy
import workloads
from services import Processes, Remote, Server

ROOT = services.ROOT
# The environment of `eventms serve`: its embedded Redis and mail sink under var/bench-data,
# and a rate limit that a benchmark from one address cannot reach.
SERVE_ENV = {"DATA_DIR": str(ROOT / "var" / "bench-data"), "RATE_LIMITER_MAX_TRY": "1000000000"}
# And per cache mode: TTL=0 turns the Redis cache off; `on` keeps the configured TTL,
# and the warm-up run warms the cache.
CACHE_ENV: dict[str, dict[str, str]] = {"off": {"TTL": "0"}, "on": {}}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--workers", default="1,2", help="uvicorn worker counts, one pass each (default 1,2)")
    add("--connections", type=int, default=32)
    add("--duration", type=float, default=10.0, help="seconds per measured run")
    add("--warmup", type=float, default=2.0, help="seconds of warm-up before each run")
    add("--threads", type=int, default=2, help="wrk threads, or generator processes")
    add("--generator", choices=["auto", "wrk", "python"], default="auto")
    add("--events", type=int, default=200)
    add("--attendees", type=int, default=10_000)
    add("--prime", type=int, default=10, help="registrations per event before the reads")
    add("--cache", default="off", help="cache modes for the reads: off, on, or off,on")
    add(
        "--profile",
        nargs="?",
        const="missed",
        help="py-spy the server: 'missed' (the endpoints under target) or keys, comma-separated",
    )
    add("--results", type=Path, default=ROOT / "bench" / "results")
    add(
        "--compare-url",
        help="another server speaking the original's API (e.g. the NestJS original): the same "
        "workloads against it in every pass, each eventms run reported as a ratio to it",
    )
    add("--compare-pid", type=int, help="its process (children counted too), for CPU/request")
    add("--compare-name", default="original", help="its name in the report")
    add(
        "--compare-ids",
        type=Path,
        help="its seed ids (written when seeding it through its API, reused when present; "
        "default var/bench/compare-<host>-<port>.json)",
    )
    add(
        "--redis-url",
        help="a Redis for `eventms serve` (instead of its embedded one); its database is "
        "FLUSHED at the start of every pass: give a dedicated db index",
    )
    add(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of `eventms serve` (an experiment: WORKER_IN_PROCESS=false)",
    )
    add(
        "--only",
        help="endpoint keys to run, comma-separated (event_by_id,event_list,"
        "attendee_search,attendee_by_id,registration); the FastAPI reference is then skipped",
    )
    add("--redis-pid", type=int, help="the Redis server's pid, for its CPU per request")
    args = parser.parse_args()
    args.worker_counts = [int(w) for w in args.workers.split(",")]
    args.extra_env = dict(item.split("=", 1) for item in args.env)
    args.only = set(args.only.split(",")) if args.only else set()
    args.cache_modes = args.cache.split(",")
    if any(mode not in CACHE_ENV for mode in args.cache_modes):
        parser.error(f"--cache: the modes are {', '.join(CACHE_ENV)}")
    return args


class Bench:
    def __init__(
        self, args: argparse.Namespace, server_url: str, pg_pid: int | None, database: str
    ) -> None:
        self.args = args
        self.server_url = server_url
        self.pg_pid = pg_pid
        self.database = database  # where the server is, for the report
        self.work = ROOT / "var" / "bench"
        self.work.mkdir(parents=True, exist_ok=True)
        self.procs = Processes(self.work)
        self.generator = loadgen.pick(args.generator)
        self.ceiling_file = self.work / "ceiling.tsv"
        self.ceiling_file.write_text("GET\t/\t\n")
        self.dsn: str | None = None  # the pass's database, for its counters

    # -- one measured run -------------------------------------------------------------

    def load(self, server: Server | Remote, requests: Path, seconds: float) -> loadgen.Load:
        return loadgen.run(
            self.generator,
            server.base,
            requests,
            connections=self.args.connections,
            duration=seconds,
            threads=self.args.threads,
            count_status=True,
        )

    def measure(
        self,
        server: Server | Remote,
        label: str,
        requests: Path,
        warm: bool = True,
        uses_db: bool = True,
        **extra: Any,
    ) -> dict[str, Any]:
        services.wait_idle(server.pid)
        if warm and self.args.warmup > 0:
            self.load(server, requests, self.args.warmup)
            services.wait_idle(server.pid)
        dsn = self.dsn if uses_db and isinstance(server, Server) else None
        meter = services.Meter(server.pid, self.pg_pid, dsn, self.args.redis_pid)
        load = self.load(server, requests, self.args.duration)
        cores, db = meter.read(load.seconds, load.requests)
        cores["generator"] = load.generator_cpu_s / load.seconds
        run = {
            "label": label,
            **extra,
            "rps": load.rps,
            "p50_ms": load.p50_ms,
            "p99_ms": load.p99_ms,
            "bytes_per_response": load.bytes_per_response,
            "cpu_ms_per_request": {
                name: 1000 * c / load.rps if load.rps else 0.0
                for name, c in cores.items()
                if name in ("server", "postgres", "redis")
            },
            "requests": load.requests,
            "seconds": load.seconds,
            "non_2xx": load.non_2xx,
            "errors": load.errors,
            "statuses": load.statuses,
            "cpu_cores": cores,
            "db": db,
        }
        print(report.console_line(run), flush=True)
        return run

    # -- a pass -------------------------------------------------------------------------

    def ceiling(self, workers: int, app: str = "bare") -> dict[str, Any]:
        """The bare ASGI app; or, with app="fastapi", the framework without a database."""
        port = free_port()
        argv = services.ceiling_argv(port, workers, app)
        server = self.procs.serve(f"{app}-w{workers}", argv, {}, port)
        label, key = {
            "bare": ("bare ASGI (ceiling)", "ceiling"),
            "fastapi": ("FastAPI + CORS, no db (reference)", "fastapi"),
        }[app]
        try:
            return self.measure(server, label, self.ceiling_file, uses_db=False, key=key)
        finally:
            self.procs.stop(server)

    def one_pass(self, workers: int) -> dict[str, Any]:
        args = self.args
        print(f"\n== {workers} worker(s), generator {self.generator}", flush=True)
        load_before = list(os.getloadavg())
        database_url = services.reset_database(self.server_url)
        env = {"DATABASE_URL": database_url, **SERVE_ENV, **args.extra_env}
        if args.redis_url:
            services.flush_redis(args.redis_url)
            env["REDIS_URL"] = args.redis_url
        seed = ["seed", "--events", str(args.events), "--attendees", str(args.attendees)]
        self.procs.run("seed", services.eventms_argv(*seed), env, timeout=300)
        dsn = self.dsn = services.libpq(database_url)
        files = workloads.prepare(dsn, self.work, prime=args.prime)
        warm, measured, spare = workloads.split(files["registration"], warm=2000, spare=15000)
        files["registration"] = spare  # what a profile of the writes may use up
        ceiling_runs = [self.ceiling(workers)]
        # The original's figures are fractions of the one-worker ceiling.
        ceiling_w1 = ceiling_runs if workers == 1 else [self.ceiling(1)]
        runs: list[dict[str, Any]] = []
        if not args.only:
            runs.append(self.ceiling(workers, "fastapi"))
        compared = self._compare(dsn) if args.compare_url else []
        seats: dict[str, int] = {}
        profiles: dict[str, Any] = {}
        for number, mode in enumerate(args.cache_modes):
            port = free_port()
            argv = services.eventms_argv("serve", "--port", str(port), "--workers", str(workers))
            name = f"eventms-w{workers}-cache-{mode}"
            server = self.procs.serve(name, argv, {**env, **CACHE_ENV[mode]}, port)
            try:
                for endpoint in workloads.ENDPOINTS:
                    if endpoint.reads and self._wanted(endpoint.key):
                        runs.append(self._run(server, endpoint, files[endpoint.key], mode))
                if number == len(args.cache_modes) - 1:
                    # The writes, once, on the last mode (where the cache must invalidate).
                    # Reads are profiled before the writes: these queue confirmation
                    # mails that the server's in-process worker then sends for a while.
                    ceiling = ceiling_w1[0]["rps"]
                    profiles = self._profiles(server, workers, runs, files, ceiling)
                    if self._wanted("registration"):
                        seats = self._writes(server, dsn, mode, warm, measured, runs)
                        profiles |= self._profiles(server, workers, runs[-1:], files, ceiling)
            finally:
                self.procs.stop(server)
        ceiling_runs.append(self.ceiling(workers))
        ceiling = sum(c["rps"] for c in ceiling_runs) / len(ceiling_runs)
        if workers == 1:
            ceiling_w1 = ceiling_runs
        one = sum(c["rps"] for c in ceiling_w1) / len(ceiling_w1)
        extra_w1 = ceiling_w1 if workers != 1 else []
        for run in ceiling_runs + extra_w1 + runs + compared:
            run["fraction"] = report.fraction(run["rps"], ceiling)
            report.judge(run, one, workers, compared)
        print(f"  seats: {seats}")
        return {
            "workers": workers,
            "generator": self.generator,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "database": self.database,
            "trigram_index": workloads.search_index(dsn),
            "primed": args.prime,
            "load_before": load_before,
            "load_after": list(os.getloadavg()),
            "ceiling_rps": ceiling,
            "ceiling_runs": ceiling_runs,
            "ceiling_w1_rps": one,
            "ceiling_w1_runs": ceiling_w1 if workers != 1 else [],
            "goal_factor": workloads.goal_factor(workers),
            "runs": runs,
            "compare": (
                {"url": args.compare_url, "name": args.compare_name, "runs": compared}
                if args.compare_url
                else None
            ),
            "seats": seats,
            "profiles": profiles,
        }

    def _wanted(self, key: str) -> bool:
        return not self.args.only or key in self.args.only

    def _compare(self, dsn: str) -> list[dict[str, Any]]:
        """The same workloads against --compare-url: seeded through its API from this
        pass's eventms database unless its id file exists (the first pass's copy is then
        reused: it is the same data), reads then writes on pairs nobody sent before."""
        args = self.args
        url = args.compare_url.rstrip("/")
        ids_file = args.compare_ids or compare.default_ids_file(self.work, url)
        document = compare.load(ids_file)
        if document is None:
            print(f"  seeding {url} through its API (ids: {ids_file})", flush=True)
            document = compare.seed(url, dsn, ids_file, args.prime)
            print(f"  seeded in {document['seeded_in_s']} s; refused: {document['refused']}")
        files, pairs = compare.request_files(document, self.work, workloads.SEARCHES)
        other = Remote(args.compare_name, url, args.compare_pid)
        runs = []
        for endpoint in workloads.ENDPOINTS:
            if endpoint.reads and self._wanted(endpoint.key):
                runs.append(
                    self.measure(
                        other,
                        f"{args.compare_name}: {endpoint.label}",
                        files[endpoint.key],
                        key=endpoint.key,
                        other=args.compare_name,
                    )
                )
        if self._wanted("registration"):
            endpoint = workloads.ENDPOINTS[-1]
            planned = 4000 + int(200 * args.duration)  # well above what the original sends
            warm = compare.pairs_file(document, pairs, self.work / "compare-warm.tsv", planned)
            if args.warmup > 0:
                sent = self.load(other, warm, args.warmup).requests
                compare.advance(document, ids_file, sent + args.connections)
            measured = compare.pairs_file(document, pairs, self.work / "compare-reg.tsv", planned)
            run = self.measure(
                other,
                f"{args.compare_name}: {endpoint.label}",
                measured,
                warm=False,
                key=endpoint.key,
                other=args.compare_name,
            )
            compare.advance(document, ids_file, run["requests"] + args.connections)
            runs.append(run)
        return runs

    def _run(
        self, server: Server, endpoint: workloads.Endpoint, requests: Path, mode: str, **kw: Any
    ) -> dict[str, Any]:
        return self.measure(
            server,
            endpoint.label,
            requests,
            key=endpoint.key,
            cache=mode,
            **kw,
        )

    def _writes(
        self,
        server: Server,
        dsn: str,
        mode: str,
        warm: Path,
        measured: Path,
        runs: list[dict[str, Any]],
    ) -> dict[str, int]:
        """POST /registration on fresh pairs, then the capacity invariants."""
        if self.args.warmup > 0:
            self.load(server, warm, self.args.warmup)
        services.wait_idle(server.pid)
        rows_before = workloads.seat_check(dsn)["rows"]
        run = self._run(server, workloads.ENDPOINTS[-1], measured, mode, warm=False)
        runs.append(run)
        services.wait_idle(server.pid)  # requests still in flight when wrk stopped
        seats = workloads.seat_check(dsn)
        seats["rows_added"] = seats["rows"] - rows_before
        seats["created"] = int(run["statuses"].get("201", 0))
        return seats

    def _profiles(
        self,
        server: Server,
        workers: int,
        runs: list[dict[str, Any]],
        files: dict[str, Path],
        ceiling: float,
    ) -> dict[str, Any]:
        """py-spy the server under each endpoint asked for (by default: under target,
        judged against the first ceiling run); these runs are not part of the figures."""
        if not self.args.profile:
            return {}
        asked = self.args.profile.split(",")
        keys = [
            r["key"]
            for r in runs
            if r["key"] in asked or (asked == ["missed"] and report.missed(r, ceiling, workers))
        ]
        summaries = {}
        for key in dict.fromkeys(keys):
            raw = self.work / f"profile-w{workers}-{key}.txt"
            services.wait_idle(server.pid)
            drive = functools.partial(self.load, server, files[key], self.args.duration)
            summary = spy.record(server.pid, raw, drive, self.args.duration)
            if summary is not None:
                summaries[key] = summary
                print(f"  profile of {key} ({raw}):\n{summary['text']}", flush=True)
        return summaries


def main() -> None:
    args = _arguments()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    # SIGTERM (e.g. from make or a CI timeout) unwinds like Ctrl-C, through the finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    meta = {
        "stamp": stamp,
        "cores": os.cpu_count(),
        "uname": " ".join([*platform.uname()[0:3], platform.python_version()]),
        "load_start": list(os.getloadavg()),
    }
    bench = None
    with services.postgres_server() as (server_url, pg_pid, given):
        try:
            print(f"PostgreSQL: {server_url}, postmaster {pg_pid or 'not on this machine'}")
            where = "the server of DATABASE_URL" if given else "embedded pgserver (var/bench-pg)"
            bench = Bench(args, server_url, pg_pid, where)
            passes = [bench.one_pass(workers) for workers in args.worker_counts]
        finally:
            if bench is not None:
                bench.procs.stop_all()
    meta["load_end"] = list(os.getloadavg())
    path = report.write(args.results, stamp, meta, passes)
    print(f"\n{path.read_text()}\nwritten: {path} and {path.with_suffix('.json')}")


if __name__ == "__main__":
    main()
