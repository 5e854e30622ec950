"""Events over HTTP: CRUD, envelope, date range, uniqueness, capacity changes."""

from __future__ import annotations

import uuid

from tests.support.api import make_attendee, make_event, register


async def test_create_event_returns_envelope_and_fields(client):
    response = await client.post(
        "/event",
        json={
            "name": "PyCon",
            "description": "talks",
            "date": "2030-05-01",
            "location": "Dhaka",
            "maxAttendees": 3,
            "startTime": "09:30",
            "timezone": "Asia/Dhaka",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["statusCode"] == 201
    assert body["message"] == "Event created successfully"
    event = body["result"]
    uuid.UUID(event["id"])
    assert event["name"] == "PyCon"
    assert event["date"] == "2030-05-01"
    assert event["maxAttendees"] == 3
    assert event["registeredCount"] == 0
    assert event["availableSeats"] == 3
    assert event["startTime"] == "09:30"
    assert event["timezone"] == "Asia/Dhaka"
    assert event["eventAttendees"] == []
    assert "createdAt" in event and "updatedAt" in event


async def test_get_event_embeds_registrations_with_attendees(client):
    event = await make_event(client)
    person = await make_attendee(client, name="Grace")
    assert (await register(client, event["id"], person["id"])).status_code == 201
    response = await client.get(f"/event/{event['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Event found"
    embedded = body["result"]["eventAttendees"]
    assert len(embedded) == 1
    assert embedded[0]["attendee"]["name"] == "Grace"
    assert embedded[0]["attendeeId"] == person["id"]
    assert body["result"]["registeredCount"] == 1
    assert body["result"]["availableSeats"] == 9


async def test_unknown_and_malformed_event_ids_are_404(client):
    missing = uuid.uuid4()
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"/event/{missing}")
        assert response.status_code == 404
        assert response.json() == {
            "statusCode": 404,
            "message": f"Event with ID {missing} not found",
            "error": "Not Found",
        }
    response = await client.patch("/event/not-a-uuid", json={"name": "x"})
    assert response.status_code == 404
    assert response.json()["message"] == "Event with ID not-a-uuid not found"


async def test_duplicate_location_and_date_is_409(client, db):
    await make_event(client, location="Oslo", date="2030-03-03")
    response = await client.post(
        "/event",
        json={"name": "Again", "location": "Oslo", "date": "2030-03-03", "maxAttendees": 5},
    )
    assert response.status_code == 409
    assert response.json()["message"] == "An event will already take place at 2030-03-03 in Oslo"
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 1


async def test_update_into_taken_location_and_date_is_409(client):
    await make_event(client, location="Oslo", date="2030-03-03")
    other = await make_event(client, location="Lima", date="2030-03-03")
    response = await client.patch(f"/event/{other['id']}", json={"location": "Oslo"})
    assert response.status_code == 409
    assert response.json()["message"] == "An event will already take place at 2030-03-03 in Oslo"


async def test_patch_changes_only_sent_fields(client):
    event = await make_event(client, description="keep me")
    response = await client.patch(f"/event/{event['id']}", json={"name": "Renamed"})
    assert response.status_code == 200
    assert response.json()["message"] == "Event updated successfully"
    updated = response.json()["result"]
    assert updated["name"] == "Renamed"
    assert updated["description"] == "keep me"
    assert updated["date"] == event["date"]


async def test_lowering_capacity_below_taken_seats_is_409(client, db):
    event = await make_event(client, maxAttendees=3)
    for _ in range(2):
        person = await make_attendee(client)
        assert (await register(client, event["id"], person["id"])).status_code == 201
    response = await client.patch(f"/event/{event['id']}", json={"maxAttendees": 1})
    assert response.status_code == 409
    assert response.json()["message"] == "Event already has 2 registrations"
    assert db.execute("SELECT max_attendees FROM events").fetchone()[0] == 3
    response = await client.patch(f"/event/{event['id']}", json={"maxAttendees": 2})
    assert response.status_code == 200
    assert response.json()["result"]["availableSeats"] == 0


async def test_delete_event_returns_it_and_cascades(client, db):
    event = await make_event(client)
    person = await make_attendee(client)
    await register(client, event["id"], person["id"])
    response = await client.delete(f"/event/{event['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Event deleted successfully"
    assert body["result"]["id"] == event["id"]
    assert len(body["result"]["eventAttendees"]) == 1
    assert db.execute("SELECT count(*) FROM registrations").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM attendees").fetchone()[0] == 1
    assert (await client.get(f"/event/{event['id']}")).status_code == 404


async def test_list_is_paged_with_meta(client):
    for day in range(1, 6):
        await make_event(client, date=f"2030-01-0{day}")
    response = await client.get("/event", params={"page": 2, "limit": 2})
    body = response.json()
    assert response.status_code == 200
    assert body["message"] == "List of events"
    assert body["meta"] == {"page": 2, "limit": 2, "total": 5}
    assert [e["date"] for e in body["result"]] == ["2030-01-03", "2030-01-04"]


async def test_date_range_is_inclusive(client):
    for day in ("2030-01-01", "2030-01-10", "2030-01-20", "2030-02-01"):
        await make_event(client, date=day)
    response = await client.get(
        "/event/date-range", params={"from": "2030-01-10", "to": "2030-01-20"}
    )
    assert response.status_code == 200
    assert [e["date"] for e in response.json()["result"]] == ["2030-01-10", "2030-01-20"]
    assert response.json()["meta"]["total"] == 2
    only_from = await client.get("/event/date-range", params={"from": "2030-01-15"})
    assert [e["date"] for e in only_from.json()["result"]] == ["2030-01-20", "2030-02-01"]


async def test_date_range_rejects_bad_dates(client):
    for params in ({"from": "2030-02-30"}, {"to": "01/02/2030"}, {"from": "2030-1-1"}):
        response = await client.get("/event/date-range", params=params)
        assert response.status_code == 400, params
        assert response.json()["message"] == "Validation Error"
    response = await client.get(
        "/event/date-range", params={"from": "2030-02-01", "to": "2030-01-01"}
    )
    assert response.status_code == 400
