"""Idempotency-Key through the HTTP API (in-process): replays, reuse, bad keys, the
in-flight 409, stored refusals, scoping per caller, expiry, and the OpenAPI document."""

from __future__ import annotations

import psycopg
import pytest

from eventms.idempotency.store import lock_id
from tests.support.api import make_attendee, make_event

pytestmark = pytest.mark.asyncio

EVENT = {"name": "Launch", "date": "2031-03-01", "location": "Dock 1", "maxAttendees": 5}


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def count(db: psycopg.Connection, sql: str) -> int:
    row = db.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_repeat_gets_the_stored_answer_and_makes_nothing_new(client, db):
    first = await client.post("/event", json=EVENT, headers=keyed("create-launch"))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await client.post("/event", json=EVENT, headers=keyed("create-launch"))
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["content-type"] == "application/json"
    assert count(db, "SELECT count(*) FROM events") == 1
    # Without the key the same body is a new request: the uniqueness rule answers.
    plain = await client.post("/event", json=EVENT)
    assert plain.status_code == 409


async def test_a_repeated_registration_has_one_row_one_mail_job_one_webhook(client, db):
    hook = await client.post(
        "/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["registration.created"]}
    )
    assert hook.status_code == 201, hook.text
    event = await make_event(client)
    person = await make_attendee(client)
    body = {"eventId": event["id"], "attendeeId": person["id"]}
    answers = [
        await client.post("/registration", json=body, headers=keyed("reg-1")) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.content for a in answers}) == 1
    assert [a.headers.get("idempotent-replayed") for a in answers] == [None, "true", "true"]
    assert count(db, "SELECT count(*) FROM registrations") == 1
    assert (
        count(db, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'send_confirmation'")
        == 1
    )
    assert (
        count(db, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'deliver_webhook'")
        == 1
    )
    assert count(db, "SELECT count(*) FROM webhook_deliveries") == 1


async def test_a_refusal_is_stored_and_replayed_too(client, db):
    event = await make_event(client)
    missing = "00000000-0000-4000-8000-000000000000"
    body = {"eventId": event["id"], "attendeeId": missing}
    first = await client.post("/registration", json=body, headers=keyed("k"))
    assert first.status_code == 404
    again = await client.post("/registration", json=body, headers=keyed("k"))
    assert again.status_code == 404
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert count(db, "SELECT count(*) FROM idempotency_keys") == 1


async def test_a_refused_write_is_rolled_back_but_its_answer_kept(client, db):
    event = await make_event(client, maxAttendees=1)
    one, two = await make_attendee(client), await make_attendee(client)
    assert (
        await client.post("/registration", json={"eventId": event["id"], "attendeeId": one["id"]})
    ).status_code == 201
    full = await client.post(
        "/registration", json={"eventId": event["id"], "attendeeId": two["id"]}, headers=keyed("x")
    )
    assert full.status_code == 409
    assert full.json()["message"] == "Sorry the event is full"
    assert count(db, "SELECT count(*) FROM registrations") == 1
    assert count(db, "SELECT registered_count FROM events") == 1


async def test_the_same_key_for_another_request_is_422(client):
    assert (await client.post("/event", json=EVENT, headers=keyed("k1"))).status_code == 201
    other_body = await client.post("/event", json={**EVENT, "name": "Other"}, headers=keyed("k1"))
    assert other_body.status_code == 422
    assert other_body.json() == {
        "statusCode": 422,
        "message": "Idempotency-Key reused with a different request",
        "error": "Unprocessable Entity",
    }
    other_path = await client.post("/attendee", json=EVENT, headers=keyed("k1"))
    assert other_path.status_code == 422


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "a\x7fb", "a\tb"])
async def test_a_malformed_key_is_400_and_changes_nothing(client, db, key):
    response = await client.post(
        "/event", json=EVENT, headers=[("Idempotency-Key", key.encode("latin-1"))]
    )
    assert response.status_code == 400, response.text
    assert response.json()["message"] == (
        "Idempotency-Key must be 1 to 255 printable ASCII characters"
    )
    assert count(db, "SELECT count(*) FROM events") == 0


async def test_the_longest_key_is_fine(client):
    key = "~" * 255
    assert (await client.post("/event", json=EVENT, headers=keyed(key))).status_code == 201
    again = await client.post("/event", json=EVENT, headers=keyed(key))
    assert again.headers["idempotent-replayed"] == "true"


async def test_a_key_in_flight_is_409_with_retry_after(client, db):
    # The first request's transaction holds the key's lock: here a test connection does.
    owner = "addr:127.0.0.1"  # httpx's ASGI transport calls from 127.0.0.1
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id(owner, "busy"),))
        response = await client.post("/event", json=EVENT, headers=keyed("busy"))
    assert response.status_code == 409
    assert response.headers["retry-after"] == "1"
    assert response.json()["message"] == (
        "A request with this Idempotency-Key is still being processed"
    )
    assert count(db, "SELECT count(*) FROM events") == 0
    # Once it is free, the request runs.
    assert (await client.post("/event", json=EVENT, headers=keyed("busy"))).status_code == 201


async def test_an_expired_key_runs_the_request_again(client, db):
    assert (await client.post("/event", json=EVENT, headers=keyed("old"))).status_code == 201
    db.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
    again = await client.post("/event", json=EVENT, headers=keyed("old"))
    assert again.status_code == 409  # it ran: the event exists already
    assert "idempotent-replayed" not in again.headers
    row = db.execute("SELECT response_status, expires_at > now() FROM idempotency_keys").fetchone()
    assert row == (409, True)


async def test_a_repeated_delete_replays_its_200(client, db):
    event = await make_event(client)
    first = await client.delete(f"/event/{event['id']}", headers=keyed("del"))
    assert first.status_code == 200
    again = await client.delete(f"/event/{event['id']}", headers=keyed("del"))
    assert (again.status_code, again.headers["idempotent-replayed"]) == (200, "true")
    assert again.content == first.content
    unkeyed = await client.delete(f"/event/{event['id']}")
    assert unkeyed.status_code == 404


async def test_reads_ignore_the_header(client, db):
    await client.get("/event", headers=keyed("r"))
    assert count(db, "SELECT count(*) FROM idempotency_keys") == 0


async def test_openapi_documents_the_header_and_its_answers(app):
    document = app.openapi()
    writes = 0
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for method, operation in operations.items():
            if method not in ("post", "patch", "delete"):
                continue
            writes += 1
            names = [p["name"] for p in operation.get("parameters", [])]
            assert names.count("Idempotency-Key") == 1, (method, path)
            assert "still being processed" in operation["responses"]["409"]["description"]
            assert operation["responses"]["422"]["description"] == (
                "Idempotency-Key reused with a different request"
            )
    assert writes >= 10
    assert app.openapi() is document or app.openapi() == document  # stable when asked again


async def test_expired_keys_are_purged(client, db, database_url):
    from eventms.idempotency.jobs import purge_expired
    from tests.support.databases import libpq as _libpq

    await client.post("/event", json=EVENT, headers=keyed("a"))
    await client.post("/event", json={**EVENT, "location": "Dock 2"}, headers=keyed("b"))
    db.execute("UPDATE idempotency_keys SET expires_at = now() WHERE key = 'a'")
    async with await psycopg.AsyncConnection.connect(_libpq(database_url)) as connection:
        assert await purge_expired(connection) == 1
    assert [r[0] for r in db.execute("SELECT key FROM idempotency_keys")] == ["b"]
