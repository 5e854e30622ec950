"""Attendee self-service through HTTP: anonymous signup, manage links (API and page),
the signup rate limit, and both in AUTH_MODE=keys without a key."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from eventms.app import create_app
from eventms.config import Settings
from eventms.selfservice.tokens import ManageTokens
from tests.support.api import make_attendee, make_event
from tests.support.asgi import RunningApp, running

ADMIN = "admin-" + "k" * 40


async def sign_up(client: httpx.AsyncClient, event_id: str, **body: Any) -> httpx.Response:
    return await client.post(f"/event/{event_id}/signup", json=body)


def counts(db: psycopg.Connection) -> tuple[int, int]:
    attendees = db.execute("SELECT count(*) FROM attendees").fetchone()
    registrations = db.execute("SELECT count(*) FROM registrations").fetchone()
    assert attendees is not None and registrations is not None
    return attendees[0], registrations[0]


def tokens_of(app: RunningApp) -> ManageTokens:
    return app.state["manage_tokens"]


async def seats_taken(client: httpx.AsyncClient, event_id: str) -> int:
    response = await client.get(f"/event/{event_id}")
    assert response.status_code == 200
    return int(response.json()["result"]["registeredCount"])


async def test_signup_creates_the_attendee_and_registers_them(client, db) -> None:
    event = await make_event(client)
    response = await sign_up(client, event["id"], name="Ada Lovelace", email="ada@example.com")
    assert response.status_code == 201, response.text
    body = response.json()
    registration_id = body["result"]["registrationId"]
    assert body == {
        "statusCode": 201,
        "message": "Registered",
        "result": {
            "status": "registered",
            "registrationId": registration_id,
            "eventId": event["id"],
        },
    }
    row = db.execute(
        "SELECT a.name, a.email FROM registrations r JOIN attendees a ON a.id = r.attendee_id"
        " WHERE r.id = %s AND r.event_id = %s",
        (registration_id, event["id"]),
    ).fetchone()
    assert row == ("Ada Lovelace", "ada@example.com")
    # The same confirmation job as POST /registration, deferred with it.
    jobs = db.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'send_confirmation'"
        " AND args ->> 'registration_id' = %s",
        (registration_id,),
    ).fetchone()
    assert jobs == (1,)
    assert await seats_taken(client, event["id"]) == 1


async def test_existing_attendee_by_email_any_case_keeps_name_and_reveals_nothing(
    client, db
) -> None:
    event = await make_event(client)
    stored = await make_attendee(client, name="Ada Lovelace", email="Ada@Example.com")
    response = await sign_up(client, event["id"], name="Mallory", email="aDA@example.COM")
    assert response.status_code == 201, response.text
    text = response.text
    for secret in ("Ada", "Lovelace", "example.com", stored["id"]):
        assert secret.lower() not in text.lower()
    assert counts(db) == (1, 1)
    row = db.execute(
        "SELECT a.name, a.email FROM registrations r JOIN attendees a ON a.id = r.attendee_id"
    ).fetchone()
    assert row == ("Ada Lovelace", "Ada@example.com")  # EmailStr lowercases the domain


async def test_second_signup_is_409_and_changes_nothing(client, db) -> None:
    event = await make_event(client)
    first = await sign_up(client, event["id"], name="Ada", email="ada@example.com")
    assert first.status_code == 201
    again = await sign_up(client, event["id"], name="Someone", email="ADA@example.com")
    assert again.status_code == 409
    assert again.json()["message"] == "You are already registered for this event"
    assert counts(db) == (1, 1)


async def test_a_signup_on_a_full_event_joins_the_waiting_list(client, db) -> None:
    event = await make_event(client, maxAttendees=1)
    assert (await sign_up(client, event["id"], name="A", email="a@example.com")).status_code == 201
    waiting = []
    for n in range(3):
        answer = await sign_up(client, event["id"], name=f"W{n}", email=f"w{n}@example.com")
        assert answer.status_code == 201, answer.text
        assert answer.json()["message"] == "Added to the waiting list"
        waiting.append(answer.json()["result"])
    assert [w["position"] for w in waiting] == [1, 2, 3]
    assert {w["status"] for w in waiting} == {"waitlisted"}
    assert all(set(w) == {"status", "waitlistEntryId", "eventId", "position"} for w in waiting)
    again = await sign_up(client, event["id"], name="W0", email="W0@example.com")
    assert again.status_code == 409
    assert again.json()["message"] == "You are already on the waiting list for this event"
    assert counts(db) == (4, 1)
    assert await seats_taken(client, event["id"]) == 1
    held = db.execute("SELECT id FROM registrations").fetchone()[0]
    assert (await client.delete(f"/registration/{held}")).status_code == 200
    promoted = db.execute(
        "SELECT a.email FROM registrations r JOIN attendees a ON a.id = r.attendee_id"
    ).fetchall()
    assert promoted == [("w0@example.com",)]


@pytest.mark.parametrize("event_id", [str(uuid.UUID(int=7)), "not-a-uuid"])
async def test_unknown_event_is_404_and_creates_no_attendee(client, db, event_id) -> None:
    response = await sign_up(client, event_id, name="Ada", email="ada@example.com")
    assert response.status_code == 404
    assert response.json()["message"] == f"Event with ID {event_id} not found"
    assert counts(db) == (0, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Ada"}, "email"),
        ({"email": "ada@example.com"}, "name"),
        ({"name": "Ada", "email": "not an email"}, "email"),
        ({"name": "   ", "email": "ada@example.com"}, "name"),
        ({"name": "A" * 101, "email": "ada@example.com"}, "name"),
        ({"name": "Ada\x00", "email": "ada@example.com"}, "name"),
        ({"name": 42, "email": "ada@example.com"}, "name"),
    ],
)
async def test_bad_input_is_400_naming_the_field(client, db, body, field) -> None:
    event = await make_event(client)
    response = await sign_up(client, event["id"], **body)
    assert response.status_code == 400, response.text
    assert field in {d["field"] for d in response.json()["details"]}
    assert counts(db) == (0, 0)


async def test_body_that_is_not_json_is_400(client, db) -> None:
    event = await make_event(client)
    response = await client.post(
        f"/event/{event['id']}/signup",
        content=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert counts(db) == (0, 0)


async def test_racing_signups_with_one_new_email_make_one_attendee(client, db) -> None:
    events = [await make_event(client) for _ in range(6)]
    answers = await asyncio.gather(
        *(
            sign_up(client, e["id"], name=f"Ada {i}", email=f"{'ADA' if i % 2 else 'ada'}@x.org")
            for i, e in enumerate(events)
        )
    )
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
    assert counts(db) == (1, 6)


async def test_racing_signups_for_one_event_register_once(client, db) -> None:
    event = await make_event(client)
    answers = await asyncio.gather(
        *(sign_up(client, event["id"], name="Ada", email="ada@x.org") for _ in range(6))
    )
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5
    assert counts(db) == (1, 1)


# --- manage links -------------------------------------------------------------------


async def registered(client: httpx.AsyncClient, app: RunningApp, **event: Any) -> tuple[dict, str]:
    made = await make_event(client, **event)
    response = await sign_up(client, made["id"], name="Ada Lovelace", email="ada@example.com")
    assert response.status_code == 201
    registration_id = uuid.UUID(response.json()["result"]["registrationId"])
    return made, tokens_of(app).token_for(registration_id)


async def test_manage_get_shows_registration_public_event_and_own_details(app, client) -> None:
    event, token = await registered(client, app, name="Launch", location="Hall A")
    response = await client.get(f"/manage/{token}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Registration found"
    result = body["result"]
    assert result["eventId"] == event["id"]
    assert result["attendee"] == {"name": "Ada Lovelace", "email": "ada@example.com"}
    assert result["event"]["name"] == "Launch"
    assert result["event"]["registeredCount"] == 1
    assert "eventAttendees" not in result["event"]  # the public view


async def test_manage_delete_cancels_and_frees_the_seat(app, client, db) -> None:
    event, token = await registered(client, app, maxAttendees=1)
    assert await seats_taken(client, event["id"]) == 1
    response = await client.delete(f"/manage/{token}")
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Registration canceled"
    assert response.json()["result"]["event"]["registeredCount"] == 0
    assert counts(db) == (1, 0)
    assert await seats_taken(client, event["id"]) == 0
    for method in ("GET", "DELETE"):
        gone = await client.request(method, f"/manage/{token}")
        assert gone.status_code == 404
        assert gone.json()["message"] == "Registration not found"


def forgeries(token: str, registration_id: uuid.UUID) -> list[str]:
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    return [
        flipped,
        token[:-1],
        token + "A",
        token.upper(),
        ManageTokens(b"another-server-key" * 3).token_for(registration_id),
        str(registration_id),
        "x",
        "%00" * 43,
        "é" * 43,
        "A" * 43,
        "A" * 5000,
    ]


async def test_forged_and_malformed_tokens_are_404_never_500(app, client, db) -> None:
    _event, token = await registered(client, app)
    registration_id = tokens_of(app).registration_id(token)
    assert registration_id is not None
    for forged in forgeries(token, registration_id):
        for method in ("GET", "DELETE"):
            response = await client.request(method, f"/manage/{forged}")
            assert response.status_code == 404, (forged, response.text)
            assert response.json()["message"] == "Registration not found"
    unknown = tokens_of(app).token_for(uuid.uuid4())  # well signed, names nothing
    assert (await client.get(f"/manage/{unknown}")).status_code == 404
    assert counts(db) == (1, 1)


# --- the page -------------------------------------------------------------------------


def root(app: RunningApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_page_shows_the_registration_and_cancels_it_without_script(app, client) -> None:
    event, token = await registered(
        client, app, name="Launch <Party>", date="2030-01-15", location="Hall A"
    )
    async with root(app) as pages:
        page = await pages.get(f"/manage/{token}")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
        html = page.text
        assert "Launch &lt;Party&gt;" in html  # escaped
        assert "Tuesday, 15 January 2030" in html and "Hall A" in html
        assert "Ada Lovelace" in html
        # The button asks first (a page of its own), and only that page's POST cancels.
        assert f'method="get" action="/manage/{token}/cancel"' in html
        assert "Cancel registration" in html
        # No script, and nothing fetched from elsewhere (the QR code is a data: URI).
        body = re.sub(r'"data:[^"]*"', '""', html.split("<body>", 1)[1])
        assert "<script" not in html and "http" not in body
        confirm = await pages.get(f"/manage/{token}/cancel")
        assert confirm.status_code == 200 and "Cancel your registration?" in confirm.text
        assert f'method="post" action="/manage/{token}/cancel"' in confirm.text
        assert await seats_taken(client, event["id"]) == 1
        done = await pages.post(f"/manage/{token}/cancel")
        assert done.status_code == 200
        assert "canceled" in done.text
        assert await seats_taken(client, event["id"]) == 0
        for response in (
            await pages.get(f"/manage/{token}"),
            await pages.post(f"/manage/{token}/cancel"),
            await pages.get("/manage/forged"),
        ):
            assert response.status_code == 404
            assert response.headers["content-type"].startswith("text/html")
            assert "Registration not found" in response.text


# --- the signup rate limit -------------------------------------------------------------

WINDOW_MS = 3_600_000


@pytest.fixture
async def strict(settings: Settings) -> AsyncIterator[RunningApp]:
    into_window = (time.time() * 1000) % WINDOW_MS
    if into_window > WINDOW_MS - 10_000:  # windows are aligned to the clock
        await asyncio.sleep((WINDOW_MS - into_window) / 1000 + 0.1)
    update = {"signup_rate_limit_max_try": 2, "signup_rate_limit_time_to_leave": WINDOW_MS}
    async with running(create_app(settings.model_copy(update=update))) as app:
        yield app


def from_address(app: RunningApp, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test/api/v1")


async def test_signups_have_their_own_tighter_budget_per_client(strict, db) -> None:
    async with (
        from_address(strict, "203.0.113.7") as one,
        from_address(strict, "203.0.113.8") as other,
    ):
        event = await make_event(one, maxAttendees=50)
        for n in range(2):
            assert (
                await sign_up(one, event["id"], name="A", email=f"{n}@x.org")
            ).status_code == 201
        refused = await sign_up(one, event["id"], name="A", email="late@x.org")
        assert refused.status_code == 429
        assert refused.json()["message"].startswith("Too many requests: at most 2 per 3600 s")
        assert int(refused.headers["retry-after"]) >= 1
        # Other routes and other clients are not held back.
        assert (await one.get(f"/event/{event['id']}")).status_code == 200
        assert (await sign_up(other, event["id"], name="B", email="b@x.org")).status_code == 201
    assert counts(db) == (3, 3)


# --- AUTH_MODE=keys: anonymous callers may sign up and manage -------------------------


@pytest.fixture
async def keys_app(settings: Settings) -> AsyncIterator[RunningApp]:
    update = {"auth_mode": "keys", "admin_api_key": ADMIN}
    async with running(create_app(settings.model_copy(update=update))) as app:
        yield app


async def test_keys_mode_signup_and_manage_work_anonymously(keys_app, db) -> None:
    transport = httpx.ASGITransport(app=keys_app)
    async with (
        httpx.AsyncClient(
            transport=transport,
            base_url="http://test/api/v1",
            headers={"Authorization": f"Bearer {ADMIN}"},
        ) as admin,
        httpx.AsyncClient(transport=transport, base_url="http://test") as anonymous,
    ):
        event = await make_event(admin)
        # Keys mode is on: registering directly needs a key.
        direct = await anonymous.post(
            "/api/v1/registration", json={"eventId": event["id"], "attendeeId": str(uuid.uuid4())}
        )
        assert direct.status_code == 401
        response = await anonymous.post(
            f"/api/v1/event/{event['id']}/signup", json={"name": "Ada", "email": "ada@x.org"}
        )
        assert response.status_code == 201, response.text
        token = tokens_of(keys_app).token_for(
            uuid.UUID(response.json()["result"]["registrationId"])
        )
        shown = await anonymous.get(f"/api/v1/manage/{token}")
        assert shown.status_code == 200
        assert shown.json()["result"]["attendee"]["email"] == "ada@x.org"
        assert (await anonymous.get(f"/manage/{token}")).status_code == 200
        assert (await anonymous.delete(f"/api/v1/manage/{token}")).status_code == 200
        assert counts(db) == (1, 0)
        # A bad token is still refused on a public route.
        bad = await anonymous.post(
            f"/api/v1/event/{event['id']}/signup",
            json={"name": "Ada", "email": "ada@x.org"},
            headers={"Authorization": "Bearer emsk_made_up"},
        )
        assert bad.status_code == 401


async def test_the_manage_view_shows_the_ticket_code(app, client, db) -> None:
    import re

    _, token = await registered(client, app)
    stored = db.execute("SELECT ticket_code FROM registrations").fetchone()[0]
    shown = (await client.get(f"/manage/{token}")).json()["result"]
    assert re.fullmatch(r"[0-9A-Z]{5}(-[0-9A-Z]{5}){3}", shown["ticketCode"])
    assert shown["ticketCode"].replace("-", "") == stored
