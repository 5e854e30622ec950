"""What the benchmark runs against: a fresh database and the server processes.

Every process started here lives in its own process group and is stopped, group and
all, by `Processes.stop_all()` (run.py calls it in a `finally`, and on SIGTERM).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
from sqlalchemy.engine import make_url

from eventms.loopback import NotReady, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = "eventms_bench"


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_server() -> Iterator[tuple[str, int | None, bool]]:
    """The PostgreSQL server a benchmark runs on: DATABASE_URL's when set, else an
    embedded pgserver in var/bench-pg, started here and stopped on the way out.
    Yields its URL, its postmaster's pid (None when not on this machine) and whether
    it was given."""
    given = os.environ.get("DATABASE_URL")
    pg = None
    try:
        if given:
            server_url = given
        else:
            from eventms.embedded import EmbeddedPostgres

            pg = EmbeddedPostgres(ROOT / "var" / "bench-pg")
            server_url = pg.start()
        yield server_url, postmaster_pid(libpq(server_url)), bool(given)
    finally:
        if pg is not None:
            pg.stop()


def reset_database(server_url: str) -> str:
    """Drop and create `eventms_bench` on the server of `server_url`; return its URL.

    The benchmark never writes to the database a given DATABASE_URL names, only to
    this sibling, so that every pass starts from the same seeded state.
    """
    maintenance = make_url(server_url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(
        maintenance.render_as_string(hide_password=False), autocommit=True
    ) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (BENCH_DB,),
        )
        connection.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        connection.execute(f'CREATE DATABASE "{BENCH_DB}"')
    bench = make_url(server_url).set(drivername="postgresql+psycopg", database=BENCH_DB)
    return bench.render_as_string(hide_password=False)


def flush_redis(url: str) -> None:
    """Empty the Redis database of `url` (a dedicated index: the cache of an earlier pass
    would otherwise answer for this pass's fresh database)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def postmaster_pid(dsn: str) -> int | None:
    """The PostgreSQL server's postmaster when it runs on this machine (the parent of
    our backend), to count its CPU; None when it is elsewhere."""
    with psycopg.connect(dsn) as connection:
        row = connection.execute("SELECT pg_backend_pid()").fetchone()
        # While the backend lives: once the connection closes it may be gone already.
        try:
            with open(f"/proc/{row[0] if row else 0}/stat") as stat:
                return int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None


def tree_cpu_seconds(root: int | None) -> float:
    """CPU seconds of a live process and its descendants, dead or alive, from /proc."""
    if root is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        # utime + stime, plus cutime + cstime: the CPU of children that already exited
        # (PostgreSQL backends of connections the pool closed, for instance).
        cpu[int(entry)] = sum(int(v) for v in fields[11:15]) / ticks
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


def wait_idle(pid: int | None, limit: float = 30.0) -> None:
    """Wait until the server has worked off what an earlier run left queued (a slow
    endpoint leaves up to one request per connection in flight when wrk stops), so that
    it does not eat into the next run's time: two quiet quarter-seconds in a row."""
    if pid is None:
        time.sleep(1.0)
        return
    deadline = time.monotonic() + limit
    used, quiet = tree_cpu_seconds(pid), 0
    while time.monotonic() < deadline and quiet < 2:
        time.sleep(0.25)
        now = tree_cpu_seconds(pid)
        quiet = quiet + 1 if now - used < 0.25 * 0.1 else 0  # under a tenth of a core
        used = now


def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [float(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def db_counters(dsn: str) -> tuple[int, int]:
    """(sessions opened, transactions ended) so far in the database, from pg_stat_database.

    Backends report at most once a second, so a delta over a 10 s run is good to a few
    percent; the connection made here counts one session and one transaction itself.
    """
    with psycopg.connect(dsn, autocommit=True) as db:
        row = db.execute(
            "SELECT sessions, xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


class Meter:
    """What a run cost: cores used by the server, PostgreSQL and the whole machine, and
    PostgreSQL transactions per request and sessions opened (when given a database)."""

    def __init__(
        self,
        server_pid: int | None,
        pg_pid: int | None,
        dsn: str | None,
        redis_pid: int | None = None,
    ) -> None:
        self.pids = {
            name: pid
            for name, pid in (("server", server_pid), ("postgres", pg_pid), ("redis", redis_pid))
            if pid
        }
        self.dsn = dsn
        self.db = db_counters(dsn) if dsn else (0, 0)
        self.cpu = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}
        self.machine = system_cpu()

    def read(self, seconds: float, requests: int) -> tuple[dict[str, float], dict[str, Any] | None]:
        cores = {n: (tree_cpu_seconds(p) - self.cpu[n]) / seconds for n, p in self.pids.items()}
        busy, total = (now - then for now, then in zip(system_cpu(), self.machine, strict=True))
        cores["machine"] = (os.cpu_count() or 1) * busy / max(total, 1e-9)
        if not self.dsn:
            return cores, None
        # minus one each: the connection that took the first reading
        sessions, transactions = (
            now - then - 1 for now, then in zip(db_counters(self.dsn), self.db, strict=True)
        )
        return cores, {
            "transactions_per_request": transactions / max(1, requests),
            "new_sessions": sessions,
        }


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Remote:
    """A server this benchmark did not start (`--compare-url`): its CPU is counted when
    its pid is given (`--compare-pid`), children included."""

    name: str
    base: str
    pid: int | None  # type: ignore[assignment]


@dataclass
class Processes:
    log_dir: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float) -> None:
        """Run a command to completion (e.g. `eventms seed`), its output in the log dir."""
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            process = self._spawn(argv, env, out)
            try:
                code = process.wait(timeout)
            finally:
                self._stop(process)
        if code != 0:
            raise RuntimeError(f"{name} failed ({code}); see {log}")

    def serve(self, name: str, argv: list[str], env: dict[str, str], port: int) -> Server:
        """Start a server and wait until GET /ready answers 200."""
        log = self.log_dir / f"{name}-{port}.log"
        with log.open("wb") as out:
            process = self._spawn(argv, env, out)
        server = Server(name, process, f"http://127.0.0.1:{port}", log)
        try:
            wait_until_ready(f"{server.base}/ready", process, timeout=60)
        except NotReady as error:
            self.stop(server)
            raise RuntimeError(f"{name}: {error}; see {log}") from error
        return server

    def stop(self, server: Server) -> None:
        self._stop(server.process)

    def stop_all(self) -> None:
        for process in list(self.started):
            self._stop(process)

    def _spawn(
        self, argv: list[str], env: dict[str, str], out: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: uvicorn workers go with it
        )
        self.started.append(process)
        return process

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        if process in self.started:
            self.started.remove(process)
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        # Workers that outlived their parent still carry its process group.
        _signal_group(process.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def eventms_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "eventms", *args]


def ceiling_argv(port: int, workers: int, app: str = "bare") -> list[str]:
    script = str(ROOT / "bench" / "ceiling.py")
    return [sys.executable, script, "--port", str(port), "--workers", str(workers), "--app", app]
