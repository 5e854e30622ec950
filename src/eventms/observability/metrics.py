"""Prometheus metrics: what the api measures itself, and the small functions other
parts call to count what only they see.

For other modules (call these, never prometheus_client directly):

    metrics.cache_hit(kind) / metrics.cache_miss(kind)       kind: "event", "attendee", "list", …
    metrics.mail_sent(kind) / mail_retried(kind) / mail_failed(kind)
                                                             kind: "confirmation", "reminder"
    metrics.socketio_connected() / metrics.socketio_disconnected()

`eventms worker` serves its own counters (`serve_on_port`) when given a metrics port:
in a deployment the worker is a process, or a container, apart from the api.

The job queue depth and the age of the oldest due mail job are not counted but read
from procrastinate's tables at scrape time, so they are right whichever process
deferred or ran the jobs.

`eventms serve` runs several processes with `--workers N`; each keeps its own
counters. prometheus_client's multiprocess mode makes them add up: every process
writes its values to files in PROMETHEUS_MULTIPROC_DIR (which `serve` sets, and
empties at start, before any process imports prometheus_client), and a scrape of
any process reads them all. Without that variable (tests, a bare ASGI app) the
process's own registry is used.
"""

from __future__ import annotations

import asyncio
import os
import threading
from bisect import bisect_left
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

CONTENT_TYPE = CONTENT_TYPE_LATEST

HTTP_REQUESTS = Counter(
    "eventms_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "eventms_http_request_duration_seconds",
    "Time from request to the end of the response, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CACHE_HITS = Counter("eventms_cache_hits_total", "Reads served from the cache", ["kind"])
CACHE_MISSES = Counter("eventms_cache_misses_total", "Reads the cache could not serve", ["kind"])
MAILS_SENT = Counter("eventms_mails_sent_total", "Mails accepted by the SMTP server", ["kind"])
MAILS_RETRIED = Counter(
    "eventms_mails_retried_total", "Mail attempts that failed and will be retried", ["kind"]
)
MAILS_FAILED = Counter(
    "eventms_mails_failed_total", "Mails given up on after their last attempt", ["kind"]
)
SOCKETIO_CLIENTS = Gauge(
    "eventms_socketio_clients",
    "Socket.IO clients connected now",
    multiprocess_mode="livesum",  # the sum over the processes that are alive
)


# The labelled series seen so far, by metric and labels: `labels()` resolves a series
# anew on every call, which cost more than the counting itself on the hot path.
# Bounded: every label here takes a bounded set of values (route templates, kinds).
_SERIES: dict[tuple[object, tuple[str, ...]], Any] = {}


def _series(metric: Counter | Histogram, *labels: str) -> Any:
    found = _SERIES.get((metric, labels))
    if found is None:
        found = _SERIES[(metric, labels)] = metric.labels(*labels)
    return found


class TurnTally:
    """The request counters of one event-loop turn, written to the shared files
    together at its end.

    In multiprocess mode every `inc` or `observe` takes prometheus_client's lock,
    checks the process id and writes the mmaped file: four of those per cached read
    were 6-9 % of a worker's CPU. Here a turn's counts are added up first (the
    answers of one turn share a route and mostly a bucket), then written once each.
    A scrape sees them from the next turn on (`render` writes its own process's
    first). Outside a running loop, or without multiprocess mode (whose values are
    plain floats), counts go straight through."""

    def __init__(self, batched: bool) -> None:
        self.batched = batched
        self._lock = threading.Lock()
        self._counts: dict[Any, float] = {}
        # Histogram series: [sum, count in bucket 0, count in bucket 1, ...].
        self._observed: dict[Any, list[float]] = {}
        # The loop whose next turn writes what is held (None: nothing scheduled).
        self._flushing: asyncio.AbstractEventLoop | None = None

    def _held(self) -> bool:
        """Whether this turn's counts wait for its end (scheduling that end)."""
        if not self.batched:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._flushing is not loop:  # also after a scrape's flush, or a new loop
            self._flushing = loop
            loop.call_soon(self.flush)
        return True

    def inc(self, series: Any, amount: float = 1.0) -> None:
        with self._lock:
            if self._held():
                self._counts[series] = self._counts.get(series, 0.0) + amount
                return
        series.inc(amount)

    def observe(self, series: Any, amount: float) -> None:
        with self._lock:
            if self._held():
                totals = self._observed.get(series)
                if totals is None:
                    totals = self._observed[series] = [0.0] * (len(series._upper_bounds) + 1)
                totals[0] += amount
                # The first bucket whose bound is >= amount, as `Histogram.observe`.
                totals[1 + bisect_left(series._upper_bounds, amount)] += 1
                return
        series.observe(amount)

    def flush(self) -> None:
        with self._lock:
            self._flushing = None
            counts, self._counts = self._counts, {}
            observed, self._observed = self._observed, {}
        for series, amount in counts.items():
            series.inc(amount)
        for series, (total, *buckets) in observed.items():
            series._sum.inc(total)
            for bucket, count in zip(series._buckets, buckets, strict=True):
                if count:
                    bucket.inc(count)


TALLY = TurnTally(batched=bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")))


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    TALLY.inc(_series(HTTP_REQUESTS, method, route, str(status)))
    TALLY.observe(_series(HTTP_DURATION, method, route), seconds)


def cache_hit(kind: str) -> None:
    TALLY.inc(_series(CACHE_HITS, kind))


def cache_miss(kind: str) -> None:
    TALLY.inc(_series(CACHE_MISSES, kind))


def mail_sent(kind: str) -> None:
    _series(MAILS_SENT, kind).inc()


def mail_retried(kind: str) -> None:
    _series(MAILS_RETRIED, kind).inc()


def mail_failed(kind: str) -> None:
    _series(MAILS_FAILED, kind).inc()


def socketio_connected() -> None:
    SOCKETIO_CLIENTS.inc()


def socketio_disconnected() -> None:
    SOCKETIO_CLIENTS.dec()


QUEUE_DEPTH_SQL = text(
    "SELECT status::text, count(*) FROM procrastinate_jobs"
    " WHERE status IN ('todo', 'doing') GROUP BY status"
)


async def job_queue_depth(connection: AsyncConnection) -> dict[str, int] | None:
    """Jobs waiting (`todo`) and running (`doing`); None before procrastinate's
    schema exists."""
    exists = await connection.scalar(text("SELECT to_regclass('procrastinate_jobs')"))
    if exists is None:
        return None
    rows = (await connection.execute(QUEUE_DEPTH_SQL)).all()
    depth = {"todo": 0, "doing": 0}
    depth.update({status: int(count) for status, count in rows})
    return depth


def _queue_family(depth: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "eventms_job_queue_depth", "procrastinate jobs by status, read at scrape", labels=["status"]
    )
    for status, count in sorted(depth.items()):
        family.add_metric([status], count)
    return family


def _oldest_due_mail_family(seconds: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "eventms_mail_oldest_due_seconds",
        "How long the oldest mail job that is due has waited (0: none), read at scrape",
        value=seconds,
    )


def render(
    multiproc_dir: Path | None,
    queue_depth: dict[str, int] | None,
    oldest_due_mail: float | None = None,
) -> bytes:
    """The text exposition of every metric, summed over processes when they share a dir."""
    TALLY.flush()
    if multiproc_dir is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(multiproc_dir))
        output = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        output = generate_latest(REGISTRY)
    families = []
    if queue_depth is not None:
        families.append(_queue_family(queue_depth))
    if oldest_due_mail is not None:
        families.append(_oldest_due_mail_family(oldest_due_mail))
    if families:
        scrape = CollectorRegistry()
        scrape.register(_Fixed(*families))
        output += generate_latest(scrape)
    return output


class _Fixed:
    """A collector that yields metric families computed just before the scrape."""

    def __init__(self, *families: GaugeMetricFamily) -> None:
        self.families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return list(self.families)


def serve_on_port(host: str, port: int) -> None:
    """Serve this process's metrics at http://host:port/metrics from a daemon thread
    (`eventms worker`, which has no api of its own to answer scrapes)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:  # values live in files there, not in the default registry
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        start_http_server(port, addr=host, registry=registry)
    else:
        start_http_server(port, addr=host)


def process_exiting(multiproc_dir: Path | None) -> None:
    """Drop this process's live gauges (Socket.IO clients) from the shared sums."""
    TALLY.flush()
    if multiproc_dir is not None:
        multiprocess.mark_process_dead(os.getpid(), str(multiproc_dir))
