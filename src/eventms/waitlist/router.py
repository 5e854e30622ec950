"""Waiting-list routes: join and list under `/event/{id}/waitlist`, leave at
`/waitlist/{id}`. Parse, call the service, wrap in the envelope."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from eventms.access.deps import requires
from eventms.access.scopes import Scope
from eventms.api.deps import PageDep, SessionDep
from eventms.http.envelope import Envelope, PageEnvelope, json_response, one, page_body
from eventms.http.errors import ERROR_RESPONSES
from eventms.http.ids import parse_id
from eventms.waitlist import service
from eventms.waitlist.schemas import WaitlistEntryOut, WaitlistEntryWithAttendee, WaitlistJoin

READ = [requires(Scope.REGISTRATIONS_READ)]
WRITE = [requires(Scope.REGISTRATIONS_WRITE)]

router = APIRouter(tags=["Waiting list"], responses=ERROR_RESPONSES)


@router.post(
    "/event/{event_id}/waitlist",
    status_code=201,
    response_model=Envelope[WaitlistEntryOut],
    summary="Put an attendee on a full event's waiting list",
    description="409 when the event has free seats (register instead), or the attendee is "
    "already registered or already waiting; 404 when the event or the attendee does not "
    "exist. `position` 1 gets the next seat that frees up.",
    dependencies=WRITE,
)
async def join_waitlist(event_id: str, body: WaitlistJoin, session: SessionDep) -> Response:
    place = await service.join_waitlist(
        session, event_id=parse_id(event_id, "Event"), attendee_id=body.attendee_id
    )
    return one(201, "Added to the waiting list", WaitlistEntryOut.model_validate(place))


@router.get(
    "/event/{event_id}/waitlist",
    response_model=PageEnvelope[WaitlistEntryWithAttendee],
    summary="An event's waiting list, first in line first",
    dependencies=READ,
)
async def list_waitlist(event_id: str, session: SessionDep, page: PageDep) -> Response:
    places, total = await service.list_waitlist(
        session, event_id=parse_id(event_id, "Event"), page=page
    )
    found = [WaitlistEntryWithAttendee.model_validate(p) for p in places]
    return json_response(
        page_body("Waiting list of the event", found, WaitlistEntryWithAttendee, page, total)
    )


@router.delete(
    "/waitlist/{entry_id}",
    response_model=Envelope[WaitlistEntryOut],
    summary="Remove an entry from its waiting list",
    dependencies=WRITE,
)
async def leave_waitlist(entry_id: str, session: SessionDep) -> Response:
    place = await service.leave_waitlist(session, entry_id=parse_id(entry_id, "Waiting list entry"))
    return one(200, "Removed from the waiting list", WaitlistEntryOut.model_validate(place))
