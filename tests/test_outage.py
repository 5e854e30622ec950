"""An unreachable database is a 503 with Retry-After in the error envelope, logged
once per outage; dropped connections are answered 503, then replaced."""

from __future__ import annotations

import logging

import httpx
import pytest

from eventms.app import create_app
from eventms.config import Settings
from eventms.loopback import free_port
from tests.support.api import make_attendee, make_event
from tests.support.asgi import running

OUTAGE_LOGGER = "eventms.outage"


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == {
        "statusCode": 503,
        "message": "Service temporarily unavailable",
        "error": "Service Unavailable",
    }
    assert int(response.headers["retry-after"]) > 0


def outage_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == OUTAGE_LOGGER]


async def test_no_database_answers_503_logged_once(settings: Settings, caplog):
    """A real unreachable server: a port nothing listens on."""
    down = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"}
    )
    caplog.set_level(logging.INFO)
    async with running(create_app(down)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            calls = [
                ("POST", "/api/v1/attendee", {"name": "Ada", "email": "ada@example.com"}),
                ("POST", "/api/v1/event", {"name": "E", "date": "2030-01-01", "maxAttendees": 1}),
                ("GET", "/api/v1/event", None),
                ("GET", "/api/v1/event/6f1c0000-0000-0000-0000-000000000000", None),
                ("GET", "/api/v1/attendee?name=a", None),
                ("DELETE", "/api/v1/registration/6f1c0000-0000-0000-0000-000000000000", None),
            ]
            for method, path, body in calls * 3:
                response = await http.request(
                    method, path, json=body, headers={"Origin": "https://front.example"}
                )
                assert_unavailable(response)
                assert "access-control-allow-origin" in response.headers
            # Input is still checked first: a bad body is a 400 without the database.
            response = await http.post("/api/v1/attendee", json={"name": ""})
            assert response.status_code == 400
            assert (await http.get("/health")).status_code == 200
    logged = outage_records(caplog)
    assert len(logged) == 1, logged
    assert logged[0].startswith("database unavailable (OperationalError:")
    assert not [r for r in caplog.records if r.name == "eventms.errors"]  # no 500 logged


async def test_dropped_connections_answer_503_then_are_replaced(app, client, db, caplog):
    """PostgreSQL ends every connection of the app (an admin, a failover, a restart):
    a request that meets a dead pooled connection is a 503, the next ones succeed,
    and the log says so once each way."""
    caplog.set_level(logging.INFO)
    event = await make_event(client)
    for _ in range(6):  # several pooled connections in use
        await make_attendee(client)
    killed = db.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND application_name = ''"
    ).fetchone()[0]
    assert killed >= 1
    statuses = []
    for _ in range(5):
        response = await client.get(f"/event/{event['id']}")
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert_unavailable(response)
        response = await client.post("/attendee", json={"name": "B", "email": f"b{_}@x.io"})
        statuses.append(response.status_code)
    assert 500 not in statuses
    assert 503 in statuses  # the first request to meet a dead connection
    assert statuses[-4:] == [200, 201, 200, 201]
    logged = outage_records(caplog)
    assert len(logged) == 2, logged
    assert logged[0].startswith("database unavailable (AdminShutdown:")
    assert logged[1].startswith("database available again after")
