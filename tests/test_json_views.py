"""The views PostgreSQL renders (db/json.py) are byte for byte what pydantic makes
of the same rows through the ORM: every read view, with the awkward values (quotes,
backslashes, non-ASCII, nulls, whole-second and microsecond timestamps)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter

from eventms.attendees import service as attendees
from eventms.attendees.schemas import AttendeeOut
from eventms.attendees.views import AttendeeDetail
from eventms.db.queries import Page
from eventms.events import service as events
from eventms.events.schemas import EventBase
from eventms.events.views import EventOut
from eventms.registrations import service as registrations
from eventms.registrations.schemas import RegistrationOut, RegistrationWithTicket
from tests.support.api import make_attendee, make_event, register

AWKWARD = 'Zoë "the" \\ backslash, 日本語 <b>&</b>'
# Stored before names were checked (or by other paths): line breaks, tabs, controls.
STORED = AWKWARD + " \u2028 tab\there \x01 \r\n"


def dump(model: type[BaseModel], rows: Any, many: bool = False) -> bytes:
    if many:
        return TypeAdapter(list[model]).dump_json(  # type: ignore[valid-type]
            [model.model_validate(r) for r in rows], by_alias=True
        )
    return model.model_validate(rows).model_dump_json(by_alias=True).encode()


@pytest.fixture
async def data(client, db) -> dict[str, Any]:
    full = await make_event(
        client, name=AWKWARD, description=AWKWARD, startTime="18:30", timezone="Europe/Paris"
    )
    bare = await make_event(client, description=None, location=None, date="2031-03-03")
    people = [await make_attendee(client, name=f"{AWKWARD} {n}") for n in range(3)]
    for person in people:
        assert (await register(client, full["id"], person["id"])).status_code == 201
    assert (await register(client, bare["id"], people[0]["id"])).status_code == 201
    db.execute("UPDATE attendees SET name = %s || name", (STORED,))
    db.execute("UPDATE events SET description = %s", (STORED,))
    # Whole seconds (pydantic leaves out the fraction then) on some rows.
    db.execute("UPDATE events SET created_at = date_trunc('second', created_at)")
    db.execute("UPDATE registrations SET updated_at = date_trunc('second', updated_at)")
    return {"event": full, "bare": bare, "people": people}


async def compare(app, read: Callable[[Any], Any], orm: Callable[[Any], Any]) -> None:
    async with app.state["read_sessions"]() as session:
        rendered = await read(session)
    async with app.state["sessions"]() as session:
        expected = await orm(session)
    assert rendered == expected


async def test_event_views(app, data):
    import uuid

    for event in (data["event"], data["bare"]):
        wanted = uuid.UUID(event["id"])
        for full, model in ((True, EventOut), (False, EventBase)):

            async def read(s, full=full, wanted=wanted):
                return await events.event_json(s, event_id=wanted, full_view=full)

            async def orm(s, model=model, wanted=wanted):
                return dump(model, await events.get_event(s, event_id=wanted))

            await compare(app, read, orm)


@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("page", [Page(1, 100), Page(2, 1), Page(5, 10)])
async def test_event_pages(app, data, full, page):
    async def read(s):
        return await events.events_json(s, page=page, full_view=full)

    async def orm(s):
        found, total = await events.list_events(s, page=page)
        return dump(EventOut if full else EventBase, found, many=True), total

    await compare(app, read, orm)


async def test_attendee_views(app, data):
    import uuid

    for person in data["people"]:
        wanted = uuid.UUID(person["id"])

        async def read(s, wanted=wanted):
            body, event_ids = await attendees.attendee_json(s, attendee_id=wanted)
            return body, sorted(event_ids)

        async def orm(s, wanted=wanted):
            found = await attendees.get_attendee(s, attendee_id=wanted)
            return dump(AttendeeDetail, found), sorted(r.event_id for r in found.registrations)

        await compare(app, read, orm)


@pytest.mark.parametrize(
    ("name", "email"),
    [(None, None), ("zoë", None), (None, "PERSON"), ("the", "example"), ("%", None)],
)
async def test_attendee_search(app, data, name, email):
    page = Page(1, 2)

    async def read(s):
        return await attendees.search_attendees_json(s, page=page, name=name, email=email)

    async def orm(s):
        found, total = await attendees.search_attendees(s, page=page, name=name, email=email)
        return dump(AttendeeOut, found, many=True), total

    await compare(app, read, orm)


async def test_registration_views(app, data, db):
    ids = [row[0] for row in db.execute("SELECT id FROM registrations").fetchall()]
    for wanted in ids:

        async def read(s, wanted=wanted):
            return (await registrations.registration_json(s, registration_id=wanted))[0]

        async def orm(s, wanted=wanted):
            found = await registrations.get_registration(s, registration_id=wanted)
            return dump(RegistrationWithTicket, found)

        await compare(app, read, orm)
    for page in (Page(1, 100), Page(2, 3)):

        async def read_page(s, page=page):
            return await registrations.registrations_json(s, page=page)

        async def orm_page(s, page=page):
            found, total = await registrations.list_registrations(s, page=page)
            return dump(RegistrationWithTicket, found, many=True), total

        await compare(app, read_page, orm_page)



async def test_the_registration_answer_is_the_views_of_what_it_made(app, data, client):
    """`register` answers with JSON that PostgreSQL renders right after the INSERT,
    in both of the API's views of a registration: the same bytes as pydantic's of
    the rows it made (the event with its seat taken)."""
    person = await make_attendee(client, name=f"{AWKWARD} late")
    async with app.state["sessions"]() as session:
        made = await registrations.register(
            session, event_id=uuid.UUID(data["event"]["id"]), attendee_id=uuid.UUID(person["id"])
        )
        found = await registrations.get_registration(session, registration_id=made.id)
        assert found.event.registered_count == 4
        assert made.with_ticket_json == dump(RegistrationWithTicket, found)
        assert made.out_json == dump(RegistrationOut, found)
        await session.rollback()
