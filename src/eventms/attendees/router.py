"""`/attendee` routes: parse, call the service, wrap in the envelope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from eventms.access.deps import requires
from eventms.access.scopes import Scope
from eventms.api.deps import CacheDep, PageDep, SessionDep
from eventms.attendees import service
from eventms.attendees.schemas import AttendeeCreate, AttendeeOut, AttendeeUpdate
from eventms.attendees.views import AttendeeDetail
from eventms.cache.engine import Rendered
from eventms.cache.fast_path import by_id
from eventms.cache.keys import shows_events
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
from eventms.schemas import QueryText

READ = [requires(Scope.ATTENDEES_READ)]
WRITE = [requires(Scope.ATTENDEES_WRITE)]

router = APIRouter(prefix="/attendee", tags=["Attendees"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[AttendeeOut],
    summary="Create an attendee",
    dependencies=WRITE,
)
async def create_attendee(body: AttendeeCreate, session: SessionDep) -> Response:
    attendee = await service.create_attendee(session, fields=body)
    return one(201, "Attendee created successfully", AttendeeOut.model_validate(attendee))


@router.get(
    "",
    response_model=PageEnvelope[AttendeeOut],
    summary="List attendees, filtered by name and/or email (case-insensitive substrings)",
    dependencies=READ,
)
async def search_attendees(
    session: SessionDep,
    cache: CacheDep,
    page: PageDep,
    name: Annotated[
        QueryText | None, Query(max_length=100, description="substring of the name")
    ] = None,
    email: Annotated[
        QueryText | None, Query(max_length=100, description="substring of the email")
    ] = None,
) -> Response:
    async def render() -> Rendered:
        found, total = await service.search_attendees_json(
            session, page=page, name=name, email=email
        )
        return Rendered(page_of("List of attendees", found, page, total))

    return json_response(await cache.attendees_page(page.page, page.limit, render, name, email))


@router.get(
    "/{attendee_id}",
    response_model=Envelope[AttendeeDetail],
    summary="Get an attendee",
    dependencies=READ,
)
@by_id("attendee")
async def get_attendee(attendee_id: str, session: SessionDep, cache: CacheDep) -> Response:
    wanted = parse_id(attendee_id, "Attendee")

    async def render() -> Rendered:
        attendee, event_ids = await service.attendee_json(session, attendee_id=wanted)
        return Rendered(envelope_bytes(200, "Attendee found", attendee), shows_events(event_ids))

    return json_response(await cache.one("attendee", wanted, render))


@router.patch(
    "/{attendee_id}",
    response_model=Envelope[AttendeeDetail],
    summary="Update an attendee",
    dependencies=WRITE,
)
async def update_attendee(
    attendee_id: str, session: SessionDep, body: Annotated[AttendeeUpdate | None, Body()] = None
) -> Response:
    changes = body.model_dump(exclude_unset=True) if body else {}
    attendee = await service.update_attendee(
        session, attendee_id=parse_id(attendee_id, "Attendee"), changes=changes
    )
    return one(200, "Attendee updated successfully", AttendeeDetail.model_validate(attendee))


@router.delete(
    "/{attendee_id}",
    response_model=Envelope[AttendeeDetail],
    summary="Delete an attendee",
    dependencies=WRITE,
)
async def delete_attendee(attendee_id: str, session: SessionDep) -> Response:
    attendee = await service.delete_attendee(session, attendee_id=parse_id(attendee_id, "Attendee"))
    return one(200, "Attendee deleted successfully", AttendeeDetail.model_validate(attendee))
