"""Registrations over HTTP: the rules, the answers, the seat counter."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from eventms.app import create_app
from tests.support.access import client_for
from tests.support.api import make_attendee, make_event, register
from tests.support.asgi import running


async def test_register_embeds_event_and_attendee(client):
    event = await make_event(client, maxAttendees=5)
    person = await make_attendee(client)
    response = await register(client, event["id"], person["id"])
    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "Registration created successfully"
    result = body["result"]
    assert result["eventId"] == event["id"]
    assert result["attendeeId"] == person["id"]
    assert result["event"]["availableSeats"] == 4
    assert result["attendee"]["email"] == person["email"]
    assert len(result["registeredAt"]) == 10
    fetched = await client.get(f"/registration/{result['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["message"] == "Registration found"
    assert fetched.json()["result"]["event"]["id"] == event["id"]


async def test_duplicate_registration_is_409(client, db):
    event = await make_event(client)
    person = await make_attendee(client)
    assert (await register(client, event["id"], person["id"])).status_code == 201
    response = await register(client, event["id"], person["id"])
    assert response.status_code == 409
    assert response.json() == {
        "statusCode": 409,
        "message": "You are already registered for this event",
        "error": "Conflict",
    }
    assert db.execute("SELECT registered_count FROM events").fetchone()[0] == 1


async def test_full_event_is_409(client, db):
    event = await make_event(client, maxAttendees=1)
    first, second = await make_attendee(client), await make_attendee(client)
    assert (await register(client, event["id"], first["id"])).status_code == 201
    response = await register(client, event["id"], second["id"])
    assert response.status_code == 409
    assert response.json()["message"] == "Sorry the event is full"
    assert db.execute("SELECT count(*) FROM registrations").fetchone()[0] == 1


async def test_unknown_event_or_attendee_is_404(client, db):
    event = await make_event(client)
    person = await make_attendee(client)
    missing = str(uuid.uuid4())
    response = await register(client, missing, person["id"])
    assert response.status_code == 404
    assert response.json()["message"] == f"Event with ID {missing} not found"
    response = await register(client, event["id"], missing)
    assert response.status_code == 404
    assert response.json()["message"] == f"Attendee with ID {missing} not found"
    assert db.execute("SELECT count(*) FROM registrations").fetchone()[0] == 0


async def test_refusals_are_told_in_the_constraints_order(client, db):
    """Already registered wins over full; an unknown event over an unknown attendee
    (the order in which the INSERT's unique key, foreign keys and seat trigger tell)."""
    event = await make_event(client, maxAttendees=1)
    person = await make_attendee(client)
    assert (await register(client, event["id"], person["id"])).status_code == 201
    again = await register(client, event["id"], person["id"])  # and the event is full
    assert again.json()["message"] == "You are already registered for this event"
    missing = str(uuid.uuid4())
    both = await register(client, missing, str(uuid.uuid4()))
    assert both.json()["message"] == f"Event with ID {missing} not found"
    assert db.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()[0] == 1


async def test_a_refusal_keeps_the_connections_prepared_statements(settings, db):
    """A refused registration writes nothing and ends without a ROLLBACK, which would
    make psycopg forget (DEALLOCATE ALL) what it prepared on the connection."""
    one = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0})
    async with running(create_app(one)) as app, client_for(app) as http:
        event = await make_event(http, maxAttendees=100)
        people = [await make_attendee(http) for _ in range(7)]
        for person in people[:6]:  # past psycopg's prepare threshold (5)
            assert (await register(http, event["id"], person["id"])).status_code == 201

        async def prepared() -> int:
            async with app.state["sessions"]() as session:  # the pool's one connection
                count = await session.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
                await session.commit()  # not the ROLLBACK that closing would send
                return int(count)

        before = await prepared()
        assert before > 0
        refused = await register(http, event["id"], people[0]["id"])
        assert refused.status_code == 409
        assert await prepared() >= before
        assert (await register(http, event["id"], people[6]["id"])).status_code == 201


async def test_malformed_uuid_in_body_is_400(client):
    person = await make_attendee(client)
    response = await register(client, "not-a-uuid", person["id"])
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Validation Error"
    assert body["details"][0]["field"] == "eventId"


async def test_cancel_frees_the_seat(client, db):
    event = await make_event(client, maxAttendees=1)
    first, second = await make_attendee(client), await make_attendee(client)
    registration = (await register(client, event["id"], first["id"])).json()["result"]
    response = await client.delete(f"/registration/{registration['id']}")
    assert response.status_code == 200
    assert response.json()["message"] == "Registration canceled"
    assert response.json()["result"]["id"] == registration["id"]
    assert response.json()["result"]["event"]["availableSeats"] == 1
    assert (await register(client, event["id"], second["id"])).status_code == 201
    missing = uuid.uuid4()
    response = await client.delete(f"/registration/{missing}")
    assert response.status_code == 404
    assert response.json()["message"] == f"Registration with ID {missing} not found"


async def test_list_registrations_is_paged(client):
    event = await make_event(client)
    for _ in range(3):
        person = await make_attendee(client)
        await register(client, event["id"], person["id"])
    response = await client.get("/registration", params={"limit": 2})
    body = response.json()
    assert body["message"] == "List of registrations"
    assert body["meta"] == {"page": 1, "limit": 2, "total": 3}
    assert len(body["result"]) == 2
    assert body["result"][0]["attendee"]["id"]
