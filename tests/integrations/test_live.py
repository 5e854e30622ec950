"""Integrations with real processes: 50 racing retries through a live server, a
server SIGKILLed just before and just after its commit, a worker SIGKILLed
mid-delivery, 1,000 registrations delivered and verified, and mail flowing while a
receiver hangs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import httpx
import psycopg
import pytest
from standardwebhooks import Webhook

from eventms.config import Settings
from eventms.notifications.worker import run_worker
from tests.integrations.conftest import work_until
from tests.integrations.receiver import Answer, Receiver, by_id
from tests.support.api import make_attendee, make_event
from tests.support.live_server import LiveServer
from tests.support.mail import settings_for, worker_env
from tests.support.paths import ROOT
from tests.support.smtp import SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

KEY = {"Idempotency-Key": "checkout-7f3a"}


def scalar(db: psycopg.Connection, sql: str) -> Any:
    row = db.execute(sql).fetchone()
    assert row is not None
    return row[0]


def jobs(db: psycopg.Connection, task: str) -> int:
    return int(scalar(db, f"SELECT count(*) FROM procrastinate_jobs WHERE task_name = '{task}'"))


def wait_for_log(server: LiveServer, text: str, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while text not in server.output():
        assert time.monotonic() < deadline, f"{text!r} not logged: {server.output()[-1500:]}"
        time.sleep(0.05)


async def prepared(base: str, hook_url: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base + "/api/v1") as http:
        hook = await http.post(
            "/webhooks", json={"url": hook_url, "events": ["registration.created"]}
        )
        assert hook.status_code == 201, hook.text
        event = await make_event(http)
        person = await make_attendee(http)
    return {"eventId": event["id"], "attendeeId": person["id"]}


async def test_fifty_racing_retries_make_one_registration(live_server, db, receiver):
    body = await prepared(live_server.base, receiver.url)
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=live_server.base + "/api/v1", limits=limits) as http:
        answers = await asyncio.gather(
            *(http.post("/registration", json=body, headers=KEY) for _ in range(50))
        )
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {201, 409}, statuses
    created = [a for a in answers if a.status_code == 201]
    assert len({a.content for a in created}) == 1
    assert sum(1 for a in created if "idempotent-replayed" not in a.headers) <= 1
    for busy in (a for a in answers if a.status_code == 409):
        assert busy.json()["message"] == (
            "A request with this Idempotency-Key is still being processed"
        )
        assert busy.headers["retry-after"] == "1"
    assert scalar(db, "SELECT count(*) FROM registrations") == 1
    assert jobs(db, "send_confirmation") == 1
    assert jobs(db, "deliver_webhook") == 1
    # A retry after the race gets the one answer.
    async with httpx.AsyncClient(base_url=live_server.base + "/api/v1") as http:
        late = await http.post("/registration", json=body, headers=KEY)
    assert late.status_code == 201 and late.headers["idempotent-replayed"] == "true"
    print(
        f"50 racing: {statuses.count(201)} x 201 (1 first + replays), {statuses.count(409)} x 409"
    )


def _post_in_background(url: str, body: dict[str, str]) -> asyncio.Future[Any]:
    def post() -> Any:
        try:
            return httpx.post(url, json=body, headers=KEY, timeout=60)
        except httpx.HTTPError as error:
            return error

    return asyncio.get_running_loop().run_in_executor(None, post)


async def test_killed_before_its_commit_a_write_leaves_nothing(
    database_url, redis_url, db, receiver
):
    server = LiveServer(
        database_url,
        redis_url,
        IDEMPOTENCY_TEST_PAUSE="before-commit",
        IDEMPOTENCY_TEST_PAUSE_SECONDS="60",
    )
    try:
        body = await prepared(server.base, receiver.url)
        answer = _post_in_background(server.base + "/api/v1/registration", body)
        await asyncio.to_thread(wait_for_log, server, "pausing 60.0 s before-commit")
        server.process.kill()
        server.process.wait()
        assert isinstance(await answer, httpx.HTTPError)  # no answer reached the client
    finally:
        server.stop()
    await asyncio.sleep(0.5)  # the backend of the dead connection rolls back
    assert scalar(db, "SELECT count(*) FROM registrations") == 0
    assert scalar(db, "SELECT count(*) FROM idempotency_keys") == 0
    assert jobs(db, "send_confirmation") == 0 and jobs(db, "deliver_webhook") == 0
    retry_server = LiveServer(database_url, redis_url)
    try:
        async with httpx.AsyncClient(base_url=retry_server.base + "/api/v1") as http:
            retried = await http.post("/registration", json=body, headers=KEY, timeout=30)
    finally:
        retry_server.stop()
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert scalar(db, "SELECT count(*) FROM registrations") == 1
    assert jobs(db, "send_confirmation") == 1 and jobs(db, "deliver_webhook") == 1


async def test_killed_after_its_commit_a_write_is_replayed(database_url, redis_url, db, receiver):
    server = LiveServer(
        database_url,
        redis_url,
        IDEMPOTENCY_TEST_PAUSE="after-commit",
        IDEMPOTENCY_TEST_PAUSE_SECONDS="60",
    )
    try:
        body = await prepared(server.base, receiver.url)
        answer = _post_in_background(server.base + "/api/v1/registration", body)
        await asyncio.to_thread(wait_for_log, server, "pausing 60.0 s after-commit")
        server.process.kill()
        server.process.wait()
        assert isinstance(await answer, httpx.HTTPError)
    finally:
        server.stop()
    assert scalar(db, "SELECT count(*) FROM registrations") == 1
    assert scalar(db, "SELECT response_status FROM idempotency_keys") == 201
    retry_server = LiveServer(database_url, redis_url)
    try:
        async with httpx.AsyncClient(base_url=retry_server.base + "/api/v1") as http:
            retried = await http.post("/registration", json=body, headers=KEY, timeout=30)
    finally:
        retry_server.stop()
    assert retried.status_code == 201
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.json()["result"]["id"] == str(scalar(db, "SELECT id FROM registrations"))
    assert scalar(db, "SELECT count(*) FROM registrations") == 1
    assert jobs(db, "send_confirmation") == 1 and jobs(db, "deliver_webhook") == 1


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "eventms", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_a_worker_killed_mid_delivery_delivers_again_with_the_same_id(
    client, database_url, redis_url, db, receiver
):
    hook = (
        await client.post("/webhooks", json={"url": receiver.url, "events": ["event.created"]})
    ).json()["result"]
    receiver.answer(Answer(hang=True))
    await make_event(client)
    sink = SmtpSink().start()
    env = worker_env(database_url, redis_url, sink.port, WEBHOOK_TIMEOUT_SECONDS="60")
    first = start_worker(env)
    second = None
    try:
        assert len(await asyncio.to_thread(receiver.wait_for, 1, 30)) == 1
        first.kill()
        first.wait()
        await asyncio.sleep(2.5)  # past WORKER_STALLED_SECONDS: its job is stalled
        second = start_worker(env)
        received = await asyncio.to_thread(receiver.wait_for, 2, 30)
        assert len(received) == 2
        deadline = time.monotonic() + 10
        while scalar(db, "SELECT status FROM webhook_deliveries") != "delivered":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        sink.stop()
    [attempts] = by_id(received).values()
    assert len(attempts) == 2  # one delivery, at least once: same webhook-id
    for attempt in attempts:
        Webhook(hook["secret"]).verify(attempt.body, attempt.headers)


async def test_a_thousand_registrations_make_a_thousand_verified_deliveries(
    client, settings: Settings, db, receiver
):
    count = 1000
    hook = (
        await client.post(
            "/webhooks", json={"url": receiver.url, "events": ["registration.created"]}
        )
    ).json()["result"]
    event = await make_event(client, maxAttendees=count)
    db.execute(
        "INSERT INTO attendees (id, name, email) SELECT gen_random_uuid(), 'P' || i,"
        " 'p' || i || '@bulk.example' FROM generate_series(1, %s) AS i",
        (count,),
    )
    attendees = [str(r[0]) for r in db.execute("SELECT id FROM attendees")]
    started = time.monotonic()
    for chunk in range(0, count, 25):
        answers = await asyncio.gather(
            *(
                client.post("/registration", json={"eventId": event["id"], "attendeeId": a})
                for a in attendees[chunk : chunk + 25]
            )
        )
        assert all(a.status_code == 201 for a in answers)
    registered = time.monotonic()
    await work_until(settings, lambda: len(receiver.received) >= count, within=600)
    delivered = time.monotonic()
    webhook = Webhook(hook["secret"])
    ids = set()
    for request in receiver.received:
        payload = webhook.verify(request.body, request.headers)
        assert payload["type"] == "registration.created"
        ids.add(payload["data"]["id"])
    expected = {str(r[0]) for r in db.execute("SELECT id FROM registrations")}
    assert ids == expected and len(ids) == count
    assert len(by_id(receiver.received)) == count
    print(
        f"{count} registrations in {registered - started:.1f} s;"
        f" {count} deliveries verified in {delivered - registered:.1f} s"
    )


async def test_mail_goes_out_while_a_receiver_hangs(client, settings: Settings, db):
    receiver = Receiver(default=Answer(hang=True)).start()
    sink = SmtpSink().start()
    worker_settings = settings_for(
        settings, sink.port, webhook_timeout_seconds=60, shutdown_timeout=1
    )
    worker = asyncio.create_task(
        run_worker(worker_settings, concurrency=4, install_signal_handlers=False)
    )
    try:
        await client.post("/webhooks", json={"url": receiver.url, "events": ["*"]})
        for _ in range(8):
            await make_event(client)  # eight deliveries to a receiver that never answers
        assert len(await asyncio.to_thread(receiver.wait_for, 2, 15)) == 2
        await asyncio.sleep(2)
        # At most WEBHOOK_ENDPOINT_CONCURRENCY (2) requests to one endpoint at once.
        assert len(receiver.received) == 2
        event = await make_event(client)
        person = await make_attendee(client)
        answer = await client.post(
            "/registration", json={"eventId": event["id"], "attendeeId": person["id"]}
        )
        assert answer.status_code == 201
        started = time.monotonic()
        mails = await asyncio.to_thread(sink.wait_for, 1, 20)
        assert len(mails) == 1 and person["email"] in mails[0]["To"]
        print(f"mail sent {time.monotonic() - started:.1f} s after its registration")
        assert len(receiver.received) == 2
    finally:
        worker.cancel()
        try:
            await worker
        except asyncio.CancelledError:
            pass
        receiver.stop()
        sink.stop()
