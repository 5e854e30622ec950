"""/ready tells what is down: Redis, the in-process worker, a stale mail queue (and
the database, in test_probes); the oldest due mail job's age is a metric too."""

from __future__ import annotations

import asyncio
import logging

import httpx
import psycopg
from procrastinate.types import JSONValue

from eventms.app import create_app
from eventms.config import Settings
from eventms.loopback import free_port
from eventms.notifications.jobs import send_confirmation
from tests.support.asgi import running
from tests.support.databases import libpq as _libpq
from tests.support.mail import PROCRASTINATE_TABLES
from tests.support.metrics import sample, scrape


async def ready_of(settings: Settings) -> tuple[int, dict]:
    async with running(create_app(settings)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/ready")
    return response.status_code, response.json()


async def test_redis_down_is_reported(settings: Settings, caplog):
    caplog.set_level(logging.WARNING, logger="eventms.health")
    status, body = await ready_of(
        settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    )
    assert status == 503
    assert body["redis"] == "down" and body["down"] == ["redis"]
    assert body["database"] == "up"
    assert [r.getMessage() for r in caplog.records] == ["not ready: redis down"]


async def test_without_redis_configured_redis_is_off_not_down(settings: Settings):
    status, body = await ready_of(settings.model_copy(update={"redis_url": None}))
    assert status == 200
    assert body["redis"] == "off"


async def defer_mail(database_url: str, count: int) -> None:
    async with await psycopg.AsyncConnection.connect(_libpq(database_url)) as connection:
        async with connection.transaction():
            jobs: list[dict[str, JSONValue]] = [
                {"registration_id": f"00000000-0000-0000-0000-{n:012d}"} for n in range(count)
            ]
            await send_confirmation.configure(connection=connection).batch_defer_async(*jobs)


async def test_a_stale_mail_queue_is_reported(app, database_url, db):
    db.execute(f"TRUNCATE {', '.join(PROCRASTINATE_TABLES)} CASCADE")
    await defer_mail(database_url, 3)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        fresh = (await http.get("/ready")).json()
        assert fresh["mailQueue"] == "ok"
        assert 0 <= fresh["oldestDueMailSeconds"] < 5
        # The first job was deferred 10 minutes ago (MAIL_STALE_AFTER_SECONDS is 300).
        db.execute(
            "UPDATE procrastinate_events SET at = now() - interval '600 seconds'"
            " WHERE job_id = (SELECT min(id) FROM procrastinate_jobs)"
        )
        response = await http.get("/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["mailQueue"] == "stale" and body["down"] == ["mailQueue"]
        assert 599 <= body["oldestDueMailSeconds"] < 610
        metrics = scrape((await http.get("/metrics")).text)
        assert 599 <= sample(metrics, "eventms_mail_oldest_due_seconds") < 610

        # A retry scheduled in the future is not due; one whose time has come is.
        db.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now() + interval '1 hour'"
            " WHERE id = (SELECT min(id) FROM procrastinate_jobs)"
        )
        assert (await http.get("/ready")).json()["mailQueue"] == "ok"
        db.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now() - interval '400 seconds'"
            " WHERE id = (SELECT max(id) FROM procrastinate_jobs)"
        )
        body = (await http.get("/ready")).json()
        assert body["mailQueue"] == "stale" and 399 <= body["oldestDueMailSeconds"] < 410
    db.execute(f"TRUNCATE {', '.join(PROCRASTINATE_TABLES)} CASCADE")


async def test_the_in_process_worker_is_reported(settings: Settings, database_url, db):
    db.execute(f"TRUNCATE {', '.join(PROCRASTINATE_TABLES)} CASCADE")
    async with running(create_app(settings.model_copy(update={"worker_in_process": True}))) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            for _ in range(100):
                body = (await http.get("/ready")).json()
                if body["worker"] == "running":
                    break
                assert body["worker"] == "starting"
                await asyncio.sleep(0.05)
            assert body["status"] == "ok", body
