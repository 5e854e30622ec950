"""`/event` routes: parse, call the service, wrap in the envelope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from eventms.db import SessionDep
from eventms.events import service
from eventms.events.schemas import EventCreate, EventUpdate
from eventms.http.envelope import Envelope, PageEnvelope, many, one
from eventms.http.errors import ERROR_RESPONSES
from eventms.http.ids import parse_id
from eventms.http.pagination import PageDep
from eventms.registrations.schemas import EventOut
from eventms.schemas import StrictDate

router = APIRouter(prefix="/event", tags=["Events"], responses=ERROR_RESPONSES)


@router.post("", status_code=201, response_model=Envelope[EventOut], summary="Create an event")
async def create_event(body: EventCreate, session: SessionDep) -> Response:
    event = await service.create_event(
        session,
        name=body.name,
        description=body.description,
        on=body.date,
        location=body.location,
        max_attendees=body.maxAttendees,
        start_time=body.startTime,
        timezone=body.timezone,
    )
    return one(201, "Event created successfully", EventOut.model_validate(event))


@router.get("", response_model=PageEnvelope[EventOut], summary="List events with attendees")
async def list_events(session: SessionDep, page: PageDep) -> Response:
    events, total = await service.list_events(session, offset=page.offset, limit=page.limit)
    return many(
        200,
        "List of events",
        [EventOut.model_validate(e) for e in events],
        EventOut,
        page.meta(total),
    )


@router.get(
    "/date-range",
    response_model=PageEnvelope[EventOut],
    summary="List events whose date lies in [from, to]",
)
async def list_events_in_range(
    session: SessionDep,
    page: PageDep,
    date_from: Annotated[StrictDate | None, Query(alias="from", description="YYYY-MM-DD")] = None,
    date_to: Annotated[StrictDate | None, Query(alias="to", description="YYYY-MM-DD")] = None,
) -> Response:
    events, total = await service.list_events(
        session, offset=page.offset, limit=page.limit, date_from=date_from, date_to=date_to
    )
    return many(
        200,
        "List of events",
        [EventOut.model_validate(e) for e in events],
        EventOut,
        page.meta(total),
    )


@router.get("/{event_id}", response_model=Envelope[EventOut], summary="Get an event")
async def get_event(event_id: str, session: SessionDep) -> Response:
    event = await service.get_event(session, event_id=parse_id(event_id, "Event"))
    return one(200, "Event found", EventOut.model_validate(event))


@router.patch("/{event_id}", response_model=Envelope[EventOut], summary="Update an event")
async def update_event(event_id: str, body: EventUpdate, session: SessionDep) -> Response:
    event = await service.update_event(
        session, event_id=parse_id(event_id, "Event"), changes=body.changes()
    )
    return one(200, "Event updated successfully", EventOut.model_validate(event))


@router.delete("/{event_id}", response_model=Envelope[EventOut], summary="Delete an event")
async def delete_event(event_id: str, session: SessionDep) -> Response:
    event = await service.delete_event(session, event_id=parse_id(event_id, "Event"))
    return one(200, "Event deleted successfully", EventOut.model_validate(event))
