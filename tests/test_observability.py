"""Request ids, log lines and metrics, through the app's own middleware stack."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest

from eventms.config import load_settings
from eventms.observability import metrics
from eventms.observability.logging import (
    JsonFormatter,
    RequestContextFilter,
    logging_config,
    mask_emails,
)
from tests.support.api import make_attendee
from tests.support.metrics import sample, scrape


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the root logger writes through the real filter and JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_request_id_is_generated_and_echoed(client):
    first = await client.get(f"/event/{uuid.uuid4()}")
    second = await client.get(f"/event/{uuid.uuid4()}")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(len(rid) == 32 and int(rid, 16) >= 0 for rid in ids)
    assert ids[0] != ids[1]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("trace-42.a:b", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("evil\nforged line", False),
        ("has space", False),
    ],
)
async def test_incoming_request_id_kept_only_when_sane(client, sent, kept):
    response = await client.get("/event", headers={"X-Request-ID": sent})
    echoed = response.headers["x-request-id"]
    assert (echoed == sent) is kept
    if not kept:
        assert len(echoed) == 32


async def test_every_line_of_a_request_carries_its_id_and_masks_emails(app, client, log_lines):
    @app.get("/api/v1/_log-probe")
    async def probe() -> dict[str, str]:
        logging.getLogger("eventms.probe").info("mail queued for %s", "alice.smith@example.com")
        return {}

    response = await client.get("/_log-probe", headers={"X-Request-ID": "probe-1"})
    assert response.status_code == 200
    lines = records(log_lines)
    mine = [line for line in lines if line["request_id"] == "probe-1"]
    assert [line["logger"] for line in mine] == ["eventms.probe", "eventms.access"]
    assert mine[0]["message"] == "mail queued for a***@example.com"
    assert "alice.smith" not in log_lines.getvalue()


async def test_one_access_line_per_request_without_the_query(client, log_lines):
    await make_attendee(client, email="bob@example.com")
    response = await client.get("/attendee?email=bob@example.com")
    rid = response.headers["x-request-id"]
    access = [line for line in records(log_lines) if line["logger"] == "eventms.access"]
    assert len(access) == 2
    last = access[-1]
    assert last["request_id"] == rid
    assert (last["method"], last["path"], last["status"]) == ("GET", "/api/v1/attendee", 200)
    assert last["duration_ms"] >= 0
    assert last["client"] == "127.0.0.1:123"
    assert "bob@" not in log_lines.getvalue()


def test_mask_emails():
    assert mask_emails("to a@b.io and Zed.Q+x@mail.example.org.") == (
        "to a***@b.io and Z***@mail.example.org."
    )
    assert mask_emails("no address @ here") == "no address @ here"


def test_json_in_production_readable_otherwise():
    production = logging_config(load_settings(app_env="production", _env_file=None))
    development = logging_config(load_settings(app_env="development", _env_file=None))
    assert production["formatters"]["default"]["()"].endswith("JsonFormatter")
    assert "%(request_id)s" in development["formatters"]["default"]["format"]
    for config in (production, development):
        assert config["handlers"]["stderr"]["filters"] == ["request_context"]
        assert config["loggers"]["uvicorn.access"]["propagate"] is False


async def test_metrics_count_requests_by_route_template_and_status(client):
    route = "/api/v1/event/{event_id}"
    before = scrape((await client.get("http://test/metrics")).text)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for event_id in ids:
        assert (await client.get(f"/event/{event_id}")).status_code == 404
    assert (await client.get("/no-such-route")).status_code == 404
    response = await client.get("http://test/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = scrape(response.text)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    requests = "eventms_http_requests_total"
    assert grew(requests, method="GET", route=route, status="404") == 3
    assert grew(requests, method="GET", route="unmatched", status="404") == 1
    assert grew("eventms_http_request_duration_seconds_count", method="GET", route=route) == 3
    # One series per route, not per id or per unknown path.
    assert not any(event_id in response.text for event_id in ids)
    assert "no-such-route" not in response.text


async def test_counting_functions_for_other_parts_show_up(client):
    before = scrape((await client.get("http://test/metrics")).text)
    metrics.cache_hit("event")
    metrics.cache_hit("event")
    metrics.cache_miss("attendee")
    metrics.mail_sent("confirmation")
    metrics.mail_retried("reminder")
    metrics.mail_failed("reminder")
    metrics.socketio_connected()
    metrics.socketio_connected()
    metrics.socketio_disconnected()
    after = scrape((await client.get("http://test/metrics")).text)
    expected = {
        ("eventms_cache_hits_total", "event"): 2,
        ("eventms_cache_misses_total", "attendee"): 1,
        ("eventms_mails_sent_total", "confirmation"): 1,
        ("eventms_mails_retried_total", "reminder"): 1,
        ("eventms_mails_failed_total", "reminder"): 1,
    }
    for (name, kind), count in expected.items():
        assert sample(after, name, kind=kind) - sample(before, name, kind=kind) == count
    clients = "eventms_socketio_clients"
    assert sample(after, clients) - sample(before, clients) == 1
    metrics.socketio_disconnected()


async def test_job_queue_depth_is_read_from_procrastinate_table(client, db):
    """Before procrastinate's schema exists there is no such metric; with its table,
    the waiting and running jobs are counted at scrape time."""
    exists = db.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0]
    if exists is not None:  # the mail workers' migrations are in: count the real table
        todo = db.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"
        ).fetchone()[0]
        after = scrape((await client.get("http://test/metrics")).text)
        assert sample(after, "eventms_job_queue_depth", status="todo") == todo
        return
    before = scrape((await client.get("http://test/metrics")).text)
    assert not any(name == "eventms_job_queue_depth" for name, _ in before)
    db.execute("CREATE TABLE procrastinate_jobs (id serial PRIMARY KEY, status text)")
    try:
        db.execute(
            "INSERT INTO procrastinate_jobs (status) VALUES"
            " ('todo'), ('todo'), ('todo'), ('doing'), ('succeeded'), ('failed')"
        )
        after = scrape((await client.get("http://test/metrics")).text)
    finally:
        db.execute("DROP TABLE procrastinate_jobs")
    assert sample(after, "eventms_job_queue_depth", status="todo") == 3
    assert sample(after, "eventms_job_queue_depth", status="doing") == 1


class _Writes(io.StringIO):
    """A real text stream that also records each write it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


async def test_a_loop_turns_info_lines_are_written_together_in_order() -> None:
    import asyncio

    from eventms.observability.logging import READABLE, ReadableFormatter, TurnBufferedStreamHandler

    stream = _Writes()
    handler = TurnBufferedStreamHandler(stream)
    handler.setFormatter(ReadableFormatter(READABLE))
    handler.addFilter(RequestContextFilter())
    log = logging.getLogger("eventms.test.turns")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        for number in range(5):
            log.info("access %d", number)
        assert stream.writes == []  # held until the end of this loop turn
        await asyncio.sleep(0)
        assert len(stream.writes) == 1 and stream.getvalue().count("access") == 5
        log.info("held")
        log.warning("at once")  # written now, after what was held
        assert [line.split(" [-] ")[1] for line in stream.getvalue().splitlines()[-2:]] == [
            "held",
            "at once",
        ]
        # Outside a loop (a thread, start-up): at once.
        await asyncio.to_thread(log.info, "from a thread")
        assert stream.getvalue().endswith("from a thread\n")
    finally:
        log.removeHandler(handler)
        log.propagate = True


def test_readable_lines_match_loggings_own_formatter() -> None:
    from eventms.observability.logging import READABLE, ReadableFormatter

    ours, theirs = ReadableFormatter(READABLE), logging.Formatter(READABLE)
    for created in (1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.5, 1_700_000_001.0004):
        record = logging.LogRecord("eventms.x", logging.INFO, "", 0, "hello %s", ("you",), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        record.request_id = "abc"
        assert ours.format(record) == theirs.format(record)


@pytest.mark.parametrize("formatter_kind", ["readable", "json"])
def test_access_lines_written_directly_match_the_logging_path(formatter_kind: str) -> None:
    """`observability.access` writes the text the access record would have become."""
    from eventms.observability.access import access_log, log_access
    from eventms.observability.logging import (
        READABLE,
        ReadableFormatter,
        TurnBufferedStreamHandler,
        request_id,
    )

    def formatter() -> logging.Formatter:
        return ReadableFormatter(READABLE) if formatter_kind == "readable" else JsonFormatter()

    fields = ("GET", "/api/v1/event/x@y.io", 404, 0.001234, "127.0.0.1:5000", "ci")
    lines = []
    token = request_id.set("rid-1")
    access_log.propagate = False
    access_log.setLevel(logging.INFO)
    try:
        for handler_class in (TurnBufferedStreamHandler, logging.StreamHandler):
            stream = _Writes()
            handler = handler_class(stream)
            handler.addFilter(RequestContextFilter())
            handler.setFormatter(formatter())
            access_log.addHandler(handler)
            try:
                log_access("rid-1", *fields)
                handler.flush()
            finally:
                access_log.removeHandler(handler)
            (line,) = stream.getvalue().splitlines()
            lines.append(line)
    finally:
        access_log.propagate = True
        access_log.setLevel(logging.NOTSET)
        request_id.reset(token)
    direct, through_logging = lines
    if formatter_kind == "readable":
        assert direct[23:] == through_logging[23:]  # after the time, to the millisecond
        assert " INFO    eventms.access [rid-1] GET /api/v1/event/x***@y.io 404 " in direct
    else:
        ours, theirs = json.loads(direct), json.loads(through_logging)
        assert ours.pop("time")[:16] == theirs.pop("time")[:16]
        assert ours == theirs
        assert list(ours) == list(theirs)  # the same key order too
        assert ours["message"] == "GET /api/v1/event/x***@y.io 404 1.2ms 127.0.0.1:5000 key=ci"
        assert ours["duration_ms"] == 1.23 and ours["status"] == 404 and ours["key"] == "ci"


def test_request_ids_are_unique_hex_across_batches_and_forks() -> None:
    import os

    from eventms.observability.middleware import new_request_id

    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(rid) == 32 and int(rid, 16) >= 0 for rid in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child's next id, to compare with the parent's
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 64).decode() != new_request_id()


_TALLY_SCRIPT = """
import asyncio, sys
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from eventms.observability import metrics

def exposition():
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=sys.argv[1])
    return generate_latest(registry).decode()

def series(text, route):
    return sorted(
        line.replace(route, "R") for line in text.splitlines()
        if f'route="{route}"' in line
    )

DURATIONS = [0.001, 0.004, 0.005, 0.02, 0.3, 0.3, 7.0, 60.0]

async def main():
    assert metrics.TALLY.batched
    for seconds in DURATIONS:
        metrics.observe_request("GET", "/batched", 200, seconds)
        metrics.cache_hit("event")
    held = exposition()
    # The series exist (at zero) but nothing is written yet.
    assert 'eventms_http_requests_total{method="GET",route="/batched",status="200"} 0.0' in held
    assert 'eventms_cache_hits_total{kind="event"} 0.0' in held
    await asyncio.sleep(0)  # the end of the turn
    return exposition()

after_turn = asyncio.run(main())

loop = asyncio.new_event_loop()

def count_then_stop():
    metrics.cache_hit("other")  # its writing is scheduled for this loop's next turn
    loop.stop()  # which never comes: the count is still held

loop.call_soon(count_then_stop)
loop.run_forever()
loop.close()

async def on_a_new_loop():
    metrics.cache_hit("other")
    await asyncio.sleep(0)  # this loop writes both

asyncio.run(on_a_new_loop())
assert 'eventms_cache_hits_total{kind="other"} 2.0' in exposition()
for seconds in DURATIONS:  # outside a loop: straight through
    metrics.observe_request("GET", "/direct", 200, seconds)
direct = exposition()
assert series(after_turn, "/batched") == series(direct, "/direct"), (after_turn, direct)
assert 'eventms_cache_hits_total{kind="event"} 8.0' in direct
assert 'le="0.005",method="GET",route="/batched"} 3.0' in direct
print("ok")
"""


def test_a_loop_turns_metrics_are_written_together_and_add_up_the_same(tmp_path) -> None:
    """Multiprocess mode (`serve`): a turn's counts reach the shared files at its end,
    with the same buckets, sums and counts as observing each one directly."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", _TALLY_SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
