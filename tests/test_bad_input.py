"""Bad input: every row of CONTRACT.md's error table, and the inputs that used to reach
the database. Each answer is a clear 4xx in the error envelope, never a 500, and a
refused request leaves nothing written.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.support.api import (
    VALID_EVENT,
    assert_validation_error,
    counts,
    make_attendee,
    make_event,
    register,
)


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {
        "statusCode": status,
        "message": message,
        "error": {404: "Not Found", 409: "Conflict"}[status],
    }


# --- the error table, row by row ---------------------------------------------------


@pytest.mark.parametrize("resource", ["event", "attendee", "registration"])
async def test_unknown_id_is_404_on_every_verb(client, resource):
    missing = str(uuid.uuid4())
    name = resource.capitalize()
    verbs = ["get", "delete"] + (["patch"] if resource != "registration" else [])
    for verb in verbs:
        kwargs: dict[str, Any] = {"json": {}} if verb == "patch" else {}
        response = await client.request(verb.upper(), f"/{resource}/{missing}", **kwargs)
        assert_error(response, 404, f"{name} with ID {missing} not found")


@pytest.mark.parametrize("resource", ["event", "attendee", "registration"])
@pytest.mark.parametrize("raw", ["abc", "123", "6f1c", "%00", "' OR 1=1 --", "null"])
async def test_malformed_path_id_is_404(client, resource, raw):
    response = await client.get(f"/{resource}/{raw}")
    assert response.status_code == 404
    assert response.json()["message"].startswith(f"{resource.capitalize()} with ID ")


@pytest.mark.parametrize(
    "body",
    [
        {"eventId": "nope", "attendeeId": str(uuid.uuid4())},
        {"eventId": str(uuid.uuid4()), "attendeeId": 12},
        {"eventId": None, "attendeeId": str(uuid.uuid4())},
        {"eventId": str(uuid.uuid4())},
    ],
)
async def test_malformed_uuid_in_body_is_400(client, db, body):
    assert_validation_error(await client.post("/registration", json=body))
    assert counts(db) == (0, 0, 0)


async def test_validation_error_joins_messages_and_lists_details(client, db):
    response = await client.post("/event", json={"name": "", "maxAttendees": 0})
    body = assert_validation_error(response)
    fields = {d["field"] for d in body["details"]}
    assert fields == {"name", "date", "maxAttendees"}
    for detail in body["details"]:
        assert f"{detail['field']}: {detail['message']}" in body["error"]
    assert body["error"].count("; ") == 2
    assert counts(db) == (0, 0, 0)


async def test_duplicate_location_and_date_on_create_and_update(client, db):
    await make_event(client, location="Pier", date="2030-02-02")
    other = await make_event(client, location="Quay", date="2030-02-02")
    response = await client.post(
        "/event", json={**VALID_EVENT, "location": "Pier", "date": "2030-02-02"}
    )
    assert_error(response, 409, "An event will already take place at 2030-02-02 in Pier")
    response = await client.patch(f"/event/{other['id']}", json={"location": "Pier"})
    assert_error(response, 409, "An event will already take place at 2030-02-02 in Pier")
    assert db.execute("SELECT location FROM events WHERE id = %s", (other["id"],)).fetchone() == (
        "Quay",
    )
    assert counts(db)[0] == 2


async def test_duplicate_email_is_409_whatever_the_case(client, db):
    await make_attendee(client, email="grace@example.com")
    other = await make_attendee(client, email="other@example.com")
    response = await client.post("/attendee", json={"name": "G", "email": "GRACE@example.com"})
    assert_error(response, 409, "The Email GRACE@example.com already exists")
    response = await client.patch(f"/attendee/{other['id']}", json={"email": "Grace@Example.com"})
    assert response.status_code == 409
    assert response.json()["message"].startswith("The Email Grace@")
    assert counts(db)[1] == 2


async def test_already_registered_and_full_and_unknown(client, db):
    event = await make_event(client, maxAttendees=1)
    first, second = await make_attendee(client), await make_attendee(client)
    assert (await register(client, event["id"], first["id"])).status_code == 201
    assert_error(
        await register(client, event["id"], first["id"]),
        409,
        "You are already registered for this event",
    )
    assert_error(await register(client, event["id"], second["id"]), 409, "Sorry the event is full")
    missing = str(uuid.uuid4())
    assert_error(
        await register(client, missing, first["id"]), 404, f"Event with ID {missing} not found"
    )
    assert_error(
        await register(client, event["id"], missing), 404, f"Attendee with ID {missing} not found"
    )
    assert counts(db) == (1, 2, 1)
    assert db.execute("SELECT registered_count FROM events").fetchone() == (1,)


async def test_lowering_capacity_below_seats_taken_is_409_and_changes_nothing(client, db):
    event = await make_event(client, maxAttendees=5, name="Before")
    for _ in range(3):
        person = await make_attendee(client)
        assert (await register(client, event["id"], person["id"])).status_code == 201
    response = await client.patch(
        f"/event/{event['id']}", json={"maxAttendees": 2, "name": "After"}
    )
    assert_error(response, 409, "Event already has 3 registrations")
    row = db.execute("SELECT name, max_attendees FROM events").fetchone()
    assert row == ("Before", 5)
    ok = await client.patch(f"/event/{event['id']}", json={"maxAttendees": 3})
    assert ok.status_code == 200
    assert ok.json()["result"]["availableSeats"] == 0


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"name": "x",', "application/json"),
        (b"{'name': 'x'}", "application/json"),
        (b"", "application/json"),
        (b"null", "application/json"),
        (b"[]", "application/json"),
        (b'"Launch"', "application/json"),
        (b"42", "application/json"),
        (json.dumps(VALID_EVENT).encode(), "text/plain"),
        (b"name=Launch&date=2030-05-01&maxAttendees=5", "application/x-www-form-urlencoded"),
        (json.dumps(VALID_EVENT).encode(), "application/xml"),
        (b"\xff\xfe\x00garbage", "application/json"),
    ],
)
async def test_malformed_json_and_wrong_content_type_are_400(client, db, content, content_type):
    response = await client.post("/event", content=content, headers={"content-type": content_type})
    assert_validation_error(response)
    assert counts(db) == (0, 0, 0)


async def test_multipart_form_is_400(client, db):
    response = await client.post("/attendee", files={"name": (None, "Ada")}, data={"x": "y"})
    assert_validation_error(response)
    assert counts(db) == (0, 0, 0)


async def test_unexpected_error_is_500_without_internals(app, db, caplog):
    """A database refusal nobody planned for (a constraint added behind the app's back)."""
    db.execute("ALTER TABLE attendees ADD CONSTRAINT not_boom CHECK (name <> 'boom')")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as http:
            response = await http.post(
                "/attendee",
                json={"name": "boom", "email": "b@x.io"},
                headers={"Origin": "http://front.example"},
            )
    finally:
        db.execute("ALTER TABLE attendees DROP CONSTRAINT not_boom")
    assert response.status_code == 500
    assert response.json() == {
        "statusCode": 500,
        "message": "Internal server error",
        "error": "Internal Server Error",
    }
    assert "not_boom" not in response.text
    # A browser can read the 500: it carries the CORS headers like any other answer.
    assert response.headers["access-control-allow-origin"] in ("*", "http://front.example")
    assert any("not_boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    assert counts(db) == (0, 0, 0)


# --- unknown fields are ignored (documented in README and the app description) ------


async def test_unknown_fields_are_ignored(client, db, app):
    response = await client.post(
        "/event",
        json={**VALID_EVENT, "registeredCount": 99, "id": str(uuid.uuid4()), "hack": True},
    )
    assert response.status_code == 201
    result = response.json()["result"]
    assert result["registeredCount"] == 0
    assert "hack" not in result
    assert db.execute("SELECT registered_count FROM events").fetchone() == (0,)
    assert "Unknown body fields are ignored" in app.openapi()["info"]["description"]


# --- column limits, dates, numbers ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/event", {**VALID_EVENT, "name": "n" * 256}, "name"),
        ("/event", {**VALID_EVENT, "location": "l" * 256}, "location"),
        ("/event", {**VALID_EVENT, "name": "   "}, "name"),
        ("/event", {**VALID_EVENT, "timezone": "Mars/Olympus"}, "timezone"),
        ("/event", {**VALID_EVENT, "startTime": "25:00"}, "startTime"),
        ("/attendee", {"name": "a" * 101, "email": "a@example.com"}, "name"),
        ("/attendee", {"name": "Ada", "email": "a" * 89 + "@example.com"}, "email"),
        ("/attendee", {"name": "Ada", "email": "not-an-email"}, "email"),
        ("/attendee", {"name": "Ada"}, "email"),
    ],
)
async def test_limits_and_formats_are_400(client, db, path, body, field):
    assert_validation_error(await client.post(path, json=body), field)
    assert counts(db) == (0, 0, 0)


async def test_strings_at_the_column_limits_are_accepted(client):
    event = await make_event(client, name="n" * 255, location="l" * 255)
    assert len(event["name"]) == 255
    email = "a" * 88 + "@example.com"
    assert len(email) == 100
    person = await make_attendee(client, name="p" * 100, email=email)
    assert person["email"] == email


@pytest.mark.parametrize(
    "value",
    [
        "2024-02-30",
        "2024-2-3",
        "20240203",
        "2024-13-01",
        "0000-01-01",
        "2024-02-03T10:00:00",
        "tomorrow",
        "",
        20240203,
        None,
        True,
    ],
)
async def test_bad_dates_are_400(client, db, value):
    assert_validation_error(
        await client.post("/event", json={**VALID_EVENT, "date": value}), "date"
    )
    event = await make_event(client, date="2030-01-01")
    response = await client.patch(f"/event/{event['id']}", json={"date": value})
    assert_validation_error(response, "date")
    assert db.execute("SELECT date::text FROM events").fetchall() == [("2030-01-01",)]


@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True, 2**31, 10**30, None, [], "ten"])
async def test_bad_max_attendees_are_400(client, db, value):
    response = await client.post("/event", json={**VALID_EVENT, "maxAttendees": value})
    assert_validation_error(response, "maxAttendees")
    assert counts(db) == (0, 0, 0)


async def test_largest_max_attendees_is_accepted(client):
    event = await make_event(client, maxAttendees=2**31 - 1)
    assert event["availableSeats"] == 2**31 - 1


@pytest.mark.parametrize(
    "query",
    [
        "from=2024-02-30",
        "to=2024-2-3",
        "from=20240203",
        "from=1",
        "from=2024-03-01&to=2024-02-01",
        "from=%00",
    ],
)
async def test_bad_date_range_is_400(client, query):
    assert_validation_error(await client.get(f"/event/date-range?{query}"))


async def test_from_after_to_names_the_field(client):
    response = await client.get("/event/date-range?from=2024-03-01&to=2024-02-01")
    body = assert_validation_error(response, "from")
    assert "after" in body["error"]


# --- text that must stay text ----------------------------------------------------------


@pytest.mark.parametrize(
    "needle", ["%", "_", "'", '"', "\\", "%_%", "' OR '1'='1", "a'); DROP TABLE attendees; --"]
)
async def test_search_strings_are_literal_text(client, db, needle):
    await make_attendee(client, name="plain person", email="plain@example.com")
    odd = await make_attendee(client, name=f"odd {needle} name", email="odd@example.com")
    response = await client.get("/attendee", params={"name": needle})
    assert response.status_code == 200
    assert [a["id"] for a in response.json()["result"]] == [odd["id"]]
    response = await client.get("/attendee", params={"email": needle})
    assert response.status_code == 200
    assert response.json()["result"] == []
    assert counts(db)[1] == 2


@pytest.mark.parametrize("param", ["name", "email"])
async def test_nul_in_search_is_400(client, param):
    assert_validation_error(await client.get(f"/attendee?{param}=a%00b"), param)
    assert_validation_error(await client.get(f"/attendee?{param}=a" + "b" * 100), param)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/event", {**VALID_EVENT, "name": "a\x00b"}, "name"),
        ("/event", {**VALID_EVENT, "description": "\x00"}, "description"),
        ("/event", {**VALID_EVENT, "location": "x\x00"}, "location"),
        ("/attendee", {"name": "a\x00", "email": "n@example.com"}, "name"),
        ("/attendee", {"name": "Ada", "email": "n\x00@example.com"}, "email"),
    ],
)
async def test_nul_in_body_is_400(client, db, path, body, field):
    assert_validation_error(await client.post(path, json=body), field)
    assert counts(db) == (0, 0, 0)


async def test_lone_surrogate_in_body_is_400(client, db):
    raw = b'{"name": "a\\ud800b", "date": "2030-05-01", "maxAttendees": 3}'
    response = await client.post(
        "/event", content=raw, headers={"content-type": "application/json"}
    )
    assert_validation_error(response, "name")
    assert counts(db) == (0, 0, 0)


async def test_nul_in_patch_changes_nothing(client, db):
    event = await make_event(client, name="Kept")
    person = await make_attendee(client, name="Kept")
    response = await client.patch(f"/event/{event['id']}", json={"name": "x\x00", "location": "y"})
    assert_validation_error(response, "name")
    response = await client.patch(f"/attendee/{person['id']}", json={"name": "\x00"})
    assert_validation_error(response, "name")
    assert db.execute("SELECT name, location FROM events").fetchone() == ("Kept", event["location"])
    assert db.execute("SELECT name FROM attendees").fetchone() == ("Kept",)


# --- paging --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/event", "/attendee", "/registration", "/event/date-range"])
@pytest.mark.parametrize(
    "query", ["page=0", "page=-1", "page=x", "limit=0", "limit=100000", "limit=x", "limit=1.5"]
)
async def test_bad_paging_is_400(client, path, query):
    assert_validation_error(await client.get(f"{path}?{query}"))


async def test_page_past_the_end_is_empty(client):
    await make_event(client)
    response = await client.get("/event?page=1000000&limit=1000")
    assert response.status_code == 200
    assert response.json()["result"] == []
    assert response.json()["meta"] == {"page": 1000000, "limit": 1000, "total": 1}


# --- PATCH ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["name", "date", "maxAttendees"])
async def test_null_for_required_event_field_is_400(client, db, field):
    event = await make_event(client, name="Kept")
    response = await client.patch(f"/event/{event['id']}", json={field: None, "location": "New"})
    assert_validation_error(response, field)
    assert db.execute("SELECT name, location FROM events").fetchone() == ("Kept", event["location"])


@pytest.mark.parametrize("field", ["name", "email"])
async def test_null_for_required_attendee_field_is_400(client, db, field):
    person = await make_attendee(client, name="Kept")
    response = await client.patch(f"/attendee/{person['id']}", json={field: None})
    assert_validation_error(response, field)
    assert db.execute("SELECT name FROM attendees").fetchone() == ("Kept",)


async def test_optional_event_fields_can_be_nulled(client):
    event = await make_event(client, description="d", startTime="10:30", timezone="Europe/Paris")
    response = await client.patch(
        f"/event/{event['id']}", json={"description": None, "startTime": None, "timezone": None}
    )
    assert response.status_code == 200
    result = response.json()["result"]
    assert (result["description"], result["startTime"], result["timezone"]) == (None, None, None)


@pytest.mark.parametrize("resource", ["event", "attendee"])
@pytest.mark.parametrize("kwargs", [{"json": {}}, {"content": b""}, {"json": {"unknown": 1}}])
async def test_empty_patch_is_a_no_op(client, db, resource, kwargs):
    made = await (make_event(client) if resource == "event" else make_attendee(client))
    before = db.execute(f"SELECT updated_at FROM {resource}s").fetchone()
    response = await client.patch(f"/{resource}/{made['id']}", **kwargs)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["name"] == made["name"]
    assert db.execute(f"SELECT updated_at FROM {resource}s").fetchone() == before


async def test_empty_patch_of_unknown_id_is_404(client):
    missing = str(uuid.uuid4())
    response = await client.patch(f"/event/{missing}", content=b"")
    assert_error(response, 404, f"Event with ID {missing} not found")


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"name": "Changed"}', "text/plain"),
        (b"name=Changed", "application/x-www-form-urlencoded"),
        (b'["name"]', "application/json"),
        (b'{"name":', "application/json"),
    ],
)
async def test_patch_with_wrong_body_is_400_and_changes_nothing(client, db, content, content_type):
    event = await make_event(client, name="Kept")
    response = await client.patch(
        f"/event/{event['id']}", content=content, headers={"content-type": content_type}
    )
    assert_validation_error(response)
    assert db.execute("SELECT name FROM events").fetchone() == ("Kept",)
