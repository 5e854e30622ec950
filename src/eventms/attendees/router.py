"""`/attendee` routes: parse, call the service, wrap in the envelope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from eventms.attendees import service
from eventms.attendees.schemas import AttendeeCreate, AttendeeOut, AttendeeUpdate
from eventms.db import SessionDep
from eventms.http.envelope import Envelope, PageEnvelope, many, one
from eventms.http.errors import ERROR_RESPONSES
from eventms.http.ids import parse_id
from eventms.http.pagination import PageDep
from eventms.registrations.schemas import AttendeeDetail

router = APIRouter(prefix="/attendee", tags=["Attendees"], responses=ERROR_RESPONSES)


@router.post(
    "", status_code=201, response_model=Envelope[AttendeeOut], summary="Create an attendee"
)
async def create_attendee(body: AttendeeCreate, session: SessionDep) -> Response:
    attendee = await service.create_attendee(session, name=body.name, email=str(body.email))
    return one(201, "Attendee created successfully", AttendeeOut.model_validate(attendee))


@router.get(
    "",
    response_model=PageEnvelope[AttendeeOut],
    summary="List attendees, filtered by name and/or email (case-insensitive substrings)",
)
async def search_attendees(
    session: SessionDep,
    page: PageDep,
    name: Annotated[str | None, Query(max_length=100, description="substring of the name")] = None,
    email: Annotated[
        str | None, Query(max_length=100, description="substring of the email")
    ] = None,
) -> Response:
    attendees, total = await service.search_attendees(
        session, offset=page.offset, limit=page.limit, name=name, email=email
    )
    return many(
        200,
        "List of attendees",
        [AttendeeOut.model_validate(a) for a in attendees],
        AttendeeOut,
        page.meta(total),
    )


@router.get("/{attendee_id}", response_model=Envelope[AttendeeDetail], summary="Get an attendee")
async def get_attendee(attendee_id: str, session: SessionDep) -> Response:
    attendee = await service.get_attendee(session, attendee_id=parse_id(attendee_id, "Attendee"))
    return one(200, "Attendee found", AttendeeDetail.model_validate(attendee))


@router.patch(
    "/{attendee_id}", response_model=Envelope[AttendeeDetail], summary="Update an attendee"
)
async def update_attendee(attendee_id: str, body: AttendeeUpdate, session: SessionDep) -> Response:
    attendee = await service.update_attendee(
        session, attendee_id=parse_id(attendee_id, "Attendee"), changes=body.changes()
    )
    return one(200, "Attendee updated successfully", AttendeeDetail.model_validate(attendee))


@router.delete(
    "/{attendee_id}", response_model=Envelope[AttendeeDetail], summary="Delete an attendee"
)
async def delete_attendee(attendee_id: str, session: SessionDep) -> Response:
    attendee = await service.delete_attendee(session, attendee_id=parse_id(attendee_id, "Attendee"))
    return one(200, "Attendee deleted successfully", AttendeeDetail.model_validate(attendee))
