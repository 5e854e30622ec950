"""`/event` routes: parse, call the service, wrap in the envelope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from eventms.access.deps import CallerDep, public, requires
from eventms.access.scopes import Scope
from eventms.api.deps import CacheDep, PageDep, SessionDep
from eventms.cache.engine import Rendered
from eventms.cache.fast_path import by_id
from eventms.events import service
from eventms.events.schemas import EventCreate, EventUpdate
from eventms.events.views import EventOut
from eventms.http.envelope import (
    Envelope,
    PageEnvelope,
    envelope_bytes,
    json_response,
    one,
    page_of,
)
from eventms.http.errors import ERROR_RESPONSES
from eventms.http.ids import parse_id
from eventms.schemas import StrictDate

router = APIRouter(prefix="/event", tags=["Events"], responses=ERROR_RESPONSES)


WRITE = [requires(Scope.EVENTS_WRITE)]
READ = [public]
FULL_VIEW = (
    " Anonymous callers and keys without `attendees:read` get the public view: no `eventAttendees`."
)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[EventOut],
    summary="Create an event",
    dependencies=WRITE,
)
async def create_event(body: EventCreate, session: SessionDep) -> Response:
    event = await service.create_event(session, fields=body)
    return one(201, "Event created successfully", EventOut.model_validate(event))


@router.get(
    "",
    response_model=PageEnvelope[EventOut],
    summary="List events with attendees",
    description=FULL_VIEW,
    dependencies=READ,
)
async def list_events(
    session: SessionDep, cache: CacheDep, page: PageDep, caller: CallerDep
) -> Response:
    async def render() -> Rendered:
        events, total = await service.events_json(session, page=page, full_view=caller.full_view)
        return Rendered(page_of("List of events", events, page, total))

    return json_response(await cache.events_page(page.page, page.limit, render, view=caller.view))


@router.get(
    "/date-range",
    response_model=PageEnvelope[EventOut],
    summary="List events whose date lies in [from, to]",
    description=FULL_VIEW,
    dependencies=READ,
)
async def list_events_in_range(
    session: SessionDep,
    cache: CacheDep,
    page: PageDep,
    caller: CallerDep,
    date_from: Annotated[StrictDate | None, Query(alias="from", description="YYYY-MM-DD")] = None,
    date_to: Annotated[StrictDate | None, Query(alias="to", description="YYYY-MM-DD")] = None,
) -> Response:
    async def render() -> Rendered:
        events, total = await service.events_json(
            session, page=page, full_view=caller.full_view, date_from=date_from, date_to=date_to
        )
        return Rendered(page_of("List of events", events, page, total))

    body = await cache.events_page(
        page.page, page.limit, render, date_from, date_to, view=caller.view
    )
    return json_response(body)


@router.get(
    "/{event_id}",
    response_model=Envelope[EventOut],
    summary="Get an event",
    description=FULL_VIEW,
    dependencies=READ,
)
@by_id("event")
async def get_event(
    event_id: str, session: SessionDep, cache: CacheDep, caller: CallerDep
) -> Response:
    wanted = parse_id(event_id, "Event")

    async def render() -> Rendered:
        event = await service.event_json(session, event_id=wanted, full_view=caller.full_view)
        return Rendered(envelope_bytes(200, "Event found", event))

    return json_response(await cache.one("event", wanted, render, view=caller.view))


@router.patch(
    "/{event_id}",
    response_model=Envelope[EventOut],
    summary="Update an event",
    dependencies=WRITE,
)
async def update_event(
    event_id: str, session: SessionDep, body: Annotated[EventUpdate | None, Body()] = None
) -> Response:
    changes = body.model_dump(exclude_unset=True) if body else {}
    event = await service.update_event(
        session, event_id=parse_id(event_id, "Event"), changes=changes
    )
    return one(200, "Event updated successfully", EventOut.model_validate(event))


@router.delete(
    "/{event_id}",
    response_model=Envelope[EventOut],
    summary="Delete an event",
    dependencies=WRITE,
)
async def delete_event(event_id: str, session: SessionDep) -> Response:
    event = await service.delete_event(session, event_id=parse_id(event_id, "Event"))
    return one(200, "Event deleted successfully", EventOut.model_validate(event))
