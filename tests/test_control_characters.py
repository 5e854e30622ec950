"""Names are one line of text, and no text holds control characters: refused at the
edge with a 400 naming the field, nothing written. Descriptions keep their lines."""

from __future__ import annotations

import pytest

from tests.support.api import (
    VALID_ATTENDEE,
    VALID_EVENT,
    assert_validation_error,
    counts,
    make_attendee,
    make_event,
)

INJECTION = "Eve\r\nBcc: x@example.com"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/attendee", {**VALID_ATTENDEE, "name": INJECTION}, "name"),
        ("/attendee", {**VALID_ATTENDEE, "name": "Eve\nAdams"}, "name"),
        ("/attendee", {**VALID_ATTENDEE, "name": "Eve\u2028Adams"}, "name"),
        ("/attendee", {**VALID_ATTENDEE, "name": "Eve\x1b[31m"}, "name"),
        ("/attendee", {**VALID_ATTENDEE, "name": "Eve\x85"}, "name"),
        ("/attendee", {**VALID_ATTENDEE, "name": "Eve\x7f"}, "name"),
        ("/event", {**VALID_EVENT, "name": "Launch\r\nBcc: x@example.com"}, "name"),
        ("/event", {**VALID_EVENT, "location": "Dock\n1"}, "location"),
        ("/event", {**VALID_EVENT, "location": "Dock\x0b1"}, "location"),
        ("/event", {**VALID_EVENT, "description": "bell\x07"}, "description"),
    ],
)
async def test_control_characters_are_refused(client, db, path, body, field):
    body = assert_validation_error(await client.post(path, json=body), field)
    [detail] = [d for d in body["details"] if d["field"] == field]
    assert "single line" in detail["message"] or "control characters" in detail["message"]
    assert counts(db) == (0, 0, 0)


async def test_patch_with_a_line_break_changes_nothing(client, db):
    event = await make_event(client, name="Kept")
    person = await make_attendee(client, name="Kept")
    assert_validation_error(
        await client.patch(f"/attendee/{person['id']}", json={"name": INJECTION}), "name"
    )
    assert_validation_error(
        await client.patch(f"/event/{event['id']}", json={"location": "a\rb"}), "location"
    )
    assert db.execute("SELECT name FROM attendees").fetchone() == ("Kept",)
    assert db.execute("SELECT location FROM events").fetchone() == (event["location"],)


async def test_tabs_in_names_and_lines_in_descriptions_are_kept(client):
    person = await make_attendee(client, name="Eve\tAdams")
    assert person["name"] == "Eve\tAdams"
    text = "First line\r\nSecond line\n\tindented"
    event = await make_event(client, description=text)
    assert event["description"] == text


async def test_control_characters_in_a_search_are_400(client):
    assert_validation_error(await client.get("/attendee?name=a%1Bb"), "name")
