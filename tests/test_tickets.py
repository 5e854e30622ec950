"""Tickets and check-in through HTTP: the code in registration views (and nowhere
else), scans and their answers, the nonce retry, the counter, and what a key with
only `checkin` can see (never an email)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from eventms.access.scopes import Scope
from eventms.tickets.codes import ALPHABET
from tests.support.access import ADMIN_TOKEN, ROUTES, client_for, new_key
from tests.support.api import make_attendee, make_event, register

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
GROUPED = re.compile(rf"^[{ALPHABET}]{{5}}(-[{ALPHABET}]{{5}}){{3}}$")


async def registered(client: httpx.AsyncClient, **event: Any) -> tuple[dict, dict, dict]:
    """An event, an attendee and the registration (as `registrations:read` sees it)."""
    made = await make_event(client, **event)
    person = await make_attendee(client)
    response = await register(client, made["id"], person["id"])
    assert response.status_code == 201, response.text
    return made, person, response.json()["result"]


async def scan(client: httpx.AsyncClient, code: Any, **body: Any) -> httpx.Response:
    return await client.post("/checkin", json={"code": code, **body})


async def test_every_registration_gets_its_own_ticket_code(client, db):
    event, _, first = await registered(client)
    second = (await register(client, event["id"], (await make_attendee(client))["id"])).json()
    codes = {first["ticketCode"], second["result"]["ticketCode"]}
    assert len(codes) == 2
    for code in codes:
        assert GROUPED.match(code), code
    stored = db.execute("SELECT ticket_code FROM registrations WHERE id = %s", (first["id"],))
    assert stored.fetchone()[0] == first["ticketCode"].replace("-", "")
    # Shown by id and in the list, as registrations:read sees them.
    one = (await client.get(f"/registration/{first['id']}")).json()["result"]
    assert one["ticketCode"] == first["ticketCode"]
    listed = (await client.get("/registration")).json()["result"]
    assert {r["ticketCode"] for r in listed} == codes
    # The event's and the attendee's views embed registrations without their tickets.
    assert "ticketCode" not in (await client.get(f"/event/{event['id']}")).text
    assert "ticketCode" not in (await client.get(f"/attendee/{first['attendeeId']}")).text
    assert "ticketCode" not in (await client.get("/event")).text


async def test_the_database_refuses_a_duplicate_or_malformed_code(client, db):
    import psycopg

    _, _, ticket = await registered(client)
    _, _, other = await registered(client)
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(
            "UPDATE registrations SET ticket_code = %s WHERE id = %s",
            (ticket["ticketCode"].replace("-", ""), other["id"]),
        )
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("UPDATE registrations SET ticket_code = 'short' WHERE id = %s", (other["id"],))


async def test_rows_inserted_by_sql_get_a_code_from_the_server_default(client, db):
    event = await make_event(client)
    person = await make_attendee(client)
    db.execute(
        "INSERT INTO registrations (id, event_id, attendee_id) VALUES (gen_random_uuid(), %s, %s)",
        (event["id"], person["id"]),
    )
    [code] = db.execute("SELECT ticket_code FROM registrations").fetchone()
    assert re.fullmatch(rf"[{ALPHABET}]{{20}}", code)


async def test_check_in_once_then_409_with_the_time(client, db):
    event, person, ticket = await registered(client)
    first = await scan(client, ticket["ticketCode"], eventId=event["id"])
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["message"] == "Checked in"
    result = body["result"]
    assert result == {
        "registrationId": ticket["id"],
        "eventId": event["id"],
        "attendee": {"name": person["name"]},
        "checkedInAt": result["checkedInAt"],
    }
    at = datetime.fromisoformat(result["checkedInAt"])
    offset = at.utcoffset()
    assert offset is not None and offset.total_seconds() == 0

    # Lower case, without dashes, with spaces: the same ticket.
    typed = ticket["ticketCode"].replace("-", "").lower()
    again = await scan(client, f"  {typed[:10]} {typed[10:]} ")
    assert again.status_code == 409
    assert again.json() == {
        "statusCode": 409,
        "message": f"Already checked in at {result['checkedInAt']}",
        "error": "Conflict",
    }
    shown = (await client.get(f"/event/{event['id']}")).json()["result"]
    assert shown["checkedInCount"] == 1
    assert db.execute("SELECT count(*) FROM checkins").fetchone()[0] == 1


async def test_a_retried_scan_with_its_nonce_gets_the_first_answer(client):
    _, _, ticket = await registered(client)
    first = await scan(client, ticket["ticketCode"], nonce="phone-7:scan-1")
    assert first.status_code == 201
    retried = await scan(client, ticket["ticketCode"], nonce="phone-7:scan-1")
    assert retried.status_code == 201
    assert retried.content == first.content
    other_scan = await scan(client, ticket["ticketCode"], nonce="phone-8:scan-1")
    assert other_scan.status_code == 409
    no_nonce = await scan(client, ticket["ticketCode"])
    assert no_nonce.status_code == 409


async def test_unknown_canceled_malformed_and_foreign_tickets(client):
    event, _, ticket = await registered(client)
    other_event = await make_event(client)
    foreign = await scan(client, ticket["ticketCode"], eventId=other_event["id"])
    assert foreign.status_code == 409
    assert foreign.json()["message"] == "This ticket is for another event"

    for code in ["0" * 20, "not a ticket", "U" * 20, "-" * 30, "x" * 200, "🎟️" * 5]:
        response = await scan(client, code)
        assert response.status_code == 404, (code, response.text)
        assert response.json()["message"] == "Ticket not found"
    bad: list[Any] = [None, 12345, ["A"], {"code": "x"}, ""]
    for code in bad:
        response = await scan(client, code)
        assert response.status_code == 400, (code, response.text)
    bad_event = await scan(client, ticket["ticketCode"], eventId="not-a-uuid")
    assert bad_event.status_code == 400

    canceled = await client.delete(f"/registration/{ticket['id']}")
    assert canceled.status_code == 200
    gone = await scan(client, ticket["ticketCode"], eventId=event["id"])
    assert gone.status_code == 404
    assert gone.json()["message"] == "Ticket not found"


async def test_revert_a_check_in(client):
    event, _, ticket = await registered(client)
    checked = (await scan(client, ticket["ticketCode"])).json()["result"]
    reverted = await client.delete(f"/checkin/{ticket['id']}")
    assert reverted.status_code == 200
    assert reverted.json()["message"] == "Check-in reverted"
    assert reverted.json()["result"] == checked
    assert (await client.get(f"/event/{event['id']}")).json()["result"]["checkedInCount"] == 0
    assert (await client.delete(f"/checkin/{ticket['id']}")).status_code == 404
    assert (await client.delete(f"/checkin/{uuid.uuid4()}")).status_code == 404
    assert (await client.delete("/checkin/not-a-uuid")).status_code == 404
    # Checked in again after the revert: a new 201.
    assert (await scan(client, ticket["ticketCode"])).status_code == 201


async def test_the_counter_follows_cancellations_and_is_cached_fresh(client, db):
    event, _, ticket = await registered(client, maxAttendees=5)
    second = await register(client, event["id"], (await make_attendee(client))["id"])
    codes = [ticket["ticketCode"], second.json()["result"]["ticketCode"]]
    assert (await client.get(f"/event/{event['id']}")).json()["result"]["checkedInCount"] == 0
    for code in codes:
        assert (await scan(client, code)).status_code == 201
    # A cached view (warmed above) never lags a check-in.
    for view in (f"/event/{event['id']}", f"/registration/{ticket['id']}"):
        shown = (await client.get(view)).json()["result"]
        assert (shown.get("event") or shown)["checkedInCount"] == 2
    assert (await client.delete(f"/registration/{ticket['id']}")).status_code == 200
    assert (await client.get(f"/event/{event['id']}")).json()["result"]["checkedInCount"] == 1
    assert db.execute("SELECT count(*) FROM checkins").fetchone()[0] == 1
    # Deleting the event takes its check-ins along.
    assert (await client.delete(f"/event/{event['id']}")).status_code == 200
    assert db.execute("SELECT count(*) FROM checkins").fetchone()[0] == 0


async def test_a_checkin_key_sees_names_and_never_emails_or_tickets(keys_app):
    async with client_for(keys_app, ADMIN_TOKEN) as admin:
        event, person, ticket = await registered(admin, maxAttendees=3)
        door = await new_key(admin, Scope.CHECKIN.value)
    assert "@" in person["email"]
    answers: list[httpx.Response] = []
    async with client_for(keys_app, door) as http:
        answers.append(await scan(http, ticket["ticketCode"], eventId=event["id"], nonce="n"))
        answers.append(await scan(http, ticket["ticketCode"], eventId=event["id"], nonce="n"))
        answers.append(await scan(http, ticket["ticketCode"]))
        answers.append(await scan(http, ticket["ticketCode"], eventId=str(uuid.uuid4())))
        answers.append(await scan(http, "0" * 20))
        answers.append(await http.delete(f"/checkin/{ticket['id']}"))
        answers.append(await http.delete(f"/checkin/{ticket['id']}"))
        # Every GET route, with made-up ids and with the real ones.
        ids = {"event": event["id"], "attendee": person["id"], "registration": ticket["id"]}
        for method, path, _ in ROUTES:
            if method != "GET":
                continue
            answers.append(await http.get(path))
            kind = path.split("/")[1]
            if kind in ids and path.count("/") >= 2:
                answers.append(await http.get(re.sub(UUID, ids[kind], path, count=1)))
    statuses = [a.status_code for a in answers[:7]]
    assert statuses == [201, 201, 409, 409, 404, 200, 404], statuses
    assert answers[0].json()["result"]["attendee"] == {"name": person["name"]}
    assert any(a.request.url.path.endswith(f"/event/{event['id']}") for a in answers)
    for answer in answers:
        # The feed's UIDs are `<event id>@eventms` (RFC 5545's form), not addresses.
        text = re.sub(r"(?m)^UID:.*$", "", answer.text)
        assert "@" not in text, (answer.request.url, answer.text)
        assert ticket["ticketCode"] not in answer.text, (answer.request.url, answer.text)


async def test_a_registrations_write_key_gets_no_ticket_code(keys_app):
    async with client_for(keys_app, ADMIN_TOKEN) as admin:
        event = await make_event(admin)
        person = await make_attendee(admin)
        writer = await new_key(admin, Scope.REGISTRATIONS_WRITE.value)
    async with client_for(keys_app, writer) as http:
        made = await register(http, event["id"], person["id"])
    assert made.status_code == 201
    assert "ticketCode" not in made.json()["result"]
