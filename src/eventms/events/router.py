"""`/event` routes: parse, call the service, wrap in the envelope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from eventms.cache import CacheDep, Rendered
from eventms.db import SessionDep
from eventms.events import service
from eventms.events.models import Event
from eventms.events.schemas import EventCreate, EventUpdate
from eventms.http.envelope import (
    Envelope,
    PageEnvelope,
    PageMeta,
    json_response,
    many_body,
    one,
    one_body,
)
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
async def list_events(session: SessionDep, cache: CacheDep, page: PageDep) -> Response:
    async def render() -> Rendered:
        events, total = await service.list_events(session, offset=page.offset, limit=page.limit)
        return Rendered(_page_body(events, page.meta(total)))

    return json_response(await cache.events_page(page.page, page.limit, render))


@router.get(
    "/date-range",
    response_model=PageEnvelope[EventOut],
    summary="List events whose date lies in [from, to]",
)
async def list_events_in_range(
    session: SessionDep,
    cache: CacheDep,
    page: PageDep,
    date_from: Annotated[StrictDate | None, Query(alias="from", description="YYYY-MM-DD")] = None,
    date_to: Annotated[StrictDate | None, Query(alias="to", description="YYYY-MM-DD")] = None,
) -> Response:
    async def render() -> Rendered:
        events, total = await service.list_events(
            session, offset=page.offset, limit=page.limit, date_from=date_from, date_to=date_to
        )
        return Rendered(_page_body(events, page.meta(total)))

    return json_response(await cache.events_page(page.page, page.limit, render, date_from, date_to))


@router.get("/{event_id}", response_model=Envelope[EventOut], summary="Get an event")
async def get_event(event_id: str, session: SessionDep, cache: CacheDep) -> Response:
    wanted = parse_id(event_id, "Event")

    async def render() -> Rendered:
        event = await service.get_event(session, event_id=wanted)
        return Rendered(one_body(200, "Event found", EventOut.model_validate(event)))

    return json_response(await cache.event(wanted, render))


@router.patch("/{event_id}", response_model=Envelope[EventOut], summary="Update an event")
async def update_event(
    event_id: str, session: SessionDep, body: Annotated[EventUpdate | None, Body()] = None
) -> Response:
    event = await service.update_event(
        session, event_id=parse_id(event_id, "Event"), changes=body.changes() if body else {}
    )
    return one(200, "Event updated successfully", EventOut.model_validate(event))


@router.delete("/{event_id}", response_model=Envelope[EventOut], summary="Delete an event")
async def delete_event(event_id: str, session: SessionDep) -> Response:
    event = await service.delete_event(session, event_id=parse_id(event_id, "Event"))
    return one(200, "Event deleted successfully", EventOut.model_validate(event))


def _page_body(events: Sequence[Event], meta: PageMeta) -> bytes:
    return many_body(
        200, "List of events", [EventOut.model_validate(e) for e in events], EventOut, meta
    )
