"""`/registration` routes: parse, call the service, wrap in the envelope."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from eventms.db import SessionDep
from eventms.http.envelope import Envelope, PageEnvelope, many, one
from eventms.http.errors import ERROR_RESPONSES
from eventms.http.ids import parse_id
from eventms.http.pagination import PageDep
from eventms.registrations import service
from eventms.registrations.schemas import RegistrationCreate, RegistrationOut

router = APIRouter(prefix="/registration", tags=["Registrations"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[RegistrationOut],
    summary="Register an attendee for an event",
    description="409 when the attendee is already registered or the event is full; "
    "404 when the event or the attendee does not exist.",
)
async def register(body: RegistrationCreate, session: SessionDep) -> Response:
    registration = await service.register(
        session, event_id=body.eventId, attendee_id=body.attendeeId
    )
    return one(
        201, "Registration created successfully", RegistrationOut.model_validate(registration)
    )


@router.get("", response_model=PageEnvelope[RegistrationOut], summary="List registrations")
async def list_registrations(session: SessionDep, page: PageDep) -> Response:
    registrations, total = await service.list_registrations(
        session, offset=page.offset, limit=page.limit
    )
    return many(
        200,
        "List of registrations",
        [RegistrationOut.model_validate(r) for r in registrations],
        RegistrationOut,
        page.meta(total),
    )


@router.get(
    "/{registration_id}", response_model=Envelope[RegistrationOut], summary="Get a registration"
)
async def get_registration(registration_id: str, session: SessionDep) -> Response:
    registration = await service.get_registration(
        session, registration_id=parse_id(registration_id, "Registration")
    )
    return one(200, "Registration found", RegistrationOut.model_validate(registration))


@router.delete(
    "/{registration_id}", response_model=Envelope[RegistrationOut], summary="Cancel a registration"
)
async def cancel_registration(registration_id: str, session: SessionDep) -> Response:
    registration = await service.cancel(
        session, registration_id=parse_id(registration_id, "Registration")
    )
    return one(200, "Registration canceled", RegistrationOut.model_validate(registration))
