"""Mixed load for the fault tests, and the invariants every fault test ends with."""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import psycopg

from tests.support.smtp import SmtpSink

_numbers = itertools.count(1)

CONCURRENCY = 4  # WORKER_CONCURRENCY: at most this many jobs in flight when a fault hits


def mail_env(sink: SmtpSink) -> dict[str, str]:
    """`eventms serve` / `worker` settings for the fault tests: mail to `sink`, retries
    and heartbeats short."""
    return {
        "SMTP_HOST": sink.host,
        "SMTP_PORT": str(sink.port),
        "MAIL_RETRY_BASE_SECONDS": "1",
        "MAIL_RETRY_MAX_SECONDS": "1",
        "WORKER_HEARTBEAT_SECONDS": "0.5",
        "WORKER_STALLED_SECONDS": "2",
        "WORKER_CONCURRENCY": str(CONCURRENCY),
    }


def log_lines(output: str, logger: str) -> list[str]:
    """The lines of a server's log written by `logger`."""
    return [line for line in output.splitlines() if f" {logger} " in line]


@dataclass
class Burst:
    """What the clients were answered."""

    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    registered: set[str] = field(default_factory=set)  # registrations answered 201
    bad_503: list[str] = field(default_factory=list)  # 503s without envelope or Retry-After
    unexpected: list[str] = field(default_factory=list)
    requests: int = 0

    def note(self, response: httpx.Response) -> None:
        self.requests += 1
        self.statuses[response.status_code] += 1
        if response.status_code == 503:
            body = response.json()
            if (
                body.get("message") != "Service temporarily unavailable"
                or body.get("error") != "Service Unavailable"
                or not response.headers.get("retry-after")
            ):
                self.bad_503.append(response.text)
        elif response.status_code not in (200, 201):
            self.unexpected.append(
                f"{response.request.method} {response.url.path}: {response.text}"
            )


async def make_events(http: httpx.AsyncClient, count: int = 5) -> list[str]:
    ids = []
    for _ in range(count):
        n = next(_numbers)
        response = await http.post(
            "/api/v1/event",
            json={
                "name": f"Fault {n}",
                "date": "2031-03-01",
                "location": f"R{n}",
                "maxAttendees": 100_000,
            },
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["result"]["id"])
    return ids


async def _client(http: httpx.AsyncClient, events: list[str], burst: Burst, until: float) -> None:
    while time.monotonic() < until:
        n = next(_numbers)
        try:
            made = await http.post(
                "/api/v1/attendee", json={"name": f"Guest {n}", "email": f"guest{n}@example.com"}
            )
            burst.note(made)
            if made.status_code == 201:
                attendee = made.json()["result"]["id"]
                answer = await http.post(
                    "/api/v1/registration",
                    json={"eventId": random.choice(events), "attendeeId": attendee},
                )
                burst.note(answer)
                if answer.status_code == 201:
                    burst.registered.add(answer.json()["result"]["id"])
            burst.note(await http.get(f"/api/v1/event/{random.choice(events)}"))
        except httpx.TransportError as error:  # the server itself must stay up
            burst.unexpected.append(f"transport: {error!r}")
        if burst.statuses[503] and made.status_code == 503:
            await asyncio.sleep(0.05)  # as a client honouring Retry-After would, briefly


async def run_burst(
    base: str,
    *,
    seconds: float,
    clients: int = 8,
    fault_after: float,
    fault: Callable[[], Awaitable[None]],
) -> Burst:
    """`clients` clients creating attendees and registrations (and reading events)
    for `seconds`; `fault` runs `fault_after` seconds in, while they go on."""
    burst = Burst()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        events = await make_events(http)
        until = time.monotonic() + seconds

        async def inject() -> None:
            await asyncio.sleep(fault_after)
            await fault()

        await asyncio.gather(
            inject(), *(_client(http, events, burst, until) for _ in range(clients))
        )
    return burst


def mail_queue(db: psycopg.Connection) -> dict[str, int]:
    rows = db.execute(
        "SELECT status::text, count(*) FROM procrastinate_jobs"
        " WHERE queue_name = 'mail' GROUP BY status"
    ).fetchall()
    return {status: count for status, count in rows}


async def wait_for(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not reached in {within} s: {what}"
        await asyncio.sleep(0.2)


async def assert_survived(
    burst: Burst,
    db: psycopg.Connection,
    sink: SmtpSink,
    base: str,
    *,
    in_flight: int,
    within: float = 90,
) -> collections.Counter[str]:
    """Every fault test's ending: no 500 (nor any answer but 200/201/503), every 503
    in the envelope with Retry-After, every answered 201 in the database, every
    confirmation delivered exactly once but for at most `in_flight` (the jobs running
    when the fault struck), the mail queue empty, /ready back to 200."""
    assert burst.unexpected == [], burst.unexpected[:5]
    assert burst.bad_503 == [], burst.bad_503[:3]
    assert set(burst.statuses) <= {200, 201, 503}, burst.statuses
    stored = {str(row[0]) for row in db.execute("SELECT id FROM registrations")}
    assert burst.registered <= stored, f"{len(burst.registered - stored)} answered 201, not stored"
    wanted = collections.Counter(
        row[0]
        for row in db.execute(
            "SELECT a.email FROM registrations r JOIN attendees a ON a.id = r.attendee_id"
        )
    )

    def sent() -> collections.Counter[str]:
        return collections.Counter(
            m["To"].addresses[0].addr_spec
            for m in sink.messages
            if m["Subject"] == "Registration Confirmation"
        )

    await wait_for(lambda: mail_queue(db).keys() <= {"failed"}, within, "mail queue empty")
    await wait_for(lambda: set(sent()) >= set(wanted), 10, "every confirmation delivered")
    assert mail_queue(db) == {}, mail_queue(db)  # none failed either
    received = sent()
    assert set(received) == set(wanted)
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= in_flight, (duplicates, in_flight)

    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        deadline = time.monotonic() + 30
        while (ready := await http.get("/ready")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            await asyncio.sleep(0.2)
    return received
