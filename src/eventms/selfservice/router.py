"""Self-service routes, open to anonymous callers: signup, and the manage link's API."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from eventms.access.deps import public
from eventms.api.deps import ManageTokensDep, SessionDep, signup_budget
from eventms.http.envelope import Envelope, one
from eventms.http.errors import ERROR_RESPONSES
from eventms.http.ids import parse_id
from eventms.selfservice import service
from eventms.selfservice.schemas import (
    ManagedRegistration,
    SignupCreate,
    SignupOut,
    SignupWaitlisted,
)
from eventms.waitlist.service import WaitingPlace

router = APIRouter(tags=["Self-service"], responses=ERROR_RESPONSES)

REGISTERED = "Registered"
WAITLISTED = "Added to the waiting list"


@router.post(
    "/event/{event_id}/signup",
    status_code=201,
    response_model=Envelope[SignupOut | SignupWaitlisted],
    summary="Sign up for an event (anonymous)",
    description="Registers the attendee with this email (case-insensitive), creating them"
    " with this name if there is none; an existing attendee's name is kept, and the answer"
    " shows nothing stored about them. The manage link goes out in the confirmation mail."
    " On a full event the attendee joins its waiting list instead (201 `Added to the waiting"
    " list`, with the position). 409 when already registered or already waiting; 404 for"
    " an unknown event; 429 past"
    " SIGNUP_RATE_LIMIT_MAX_TRY signups per window per client.",
    dependencies=[public, signup_budget],
)
async def sign_up(event_id: str, body: SignupCreate, session: SessionDep) -> Response:
    outcome = await service.sign_up(
        session, event_id=parse_id(event_id, "Event"), name=body.name, email=body.email
    )
    if isinstance(outcome, WaitingPlace):
        waiting = SignupWaitlisted(
            status="waitlisted",
            waitlist_entry_id=outcome.id,
            event_id=outcome.event_id,
            position=outcome.position,
        )
        return one(201, WAITLISTED, waiting)
    registered = SignupOut(
        status="registered", registration_id=outcome.id, event_id=outcome.event_id
    )
    return one(201, REGISTERED, registered)


@router.get(
    "/manage/{token}",
    response_model=Envelope[ManagedRegistration],
    summary="Read the registration of a manage link",
    description="404 `Registration not found` for a forged, unknown or canceled token.",
    dependencies=[public],
)
async def read_managed(token: str, session: SessionDep, tokens: ManageTokensDep) -> Response:
    registration = await service.managed_registration(
        session, registration_id=tokens.registration_id(token)
    )
    return one(200, "Registration found", ManagedRegistration.model_validate(registration))


@router.delete(
    "/manage/{token}",
    response_model=Envelope[ManagedRegistration],
    summary="Cancel the registration of a manage link",
    description="Frees the seat as `DELETE /registration/{id}` does. 404 `Registration not"
    " found` for a forged, unknown or already canceled token.",
    dependencies=[public],
)
async def cancel_managed(token: str, session: SessionDep, tokens: ManageTokensDep) -> Response:
    registration = await service.cancel_managed(
        session, registration_id=tokens.registration_id(token)
    )
    return one(200, "Registration canceled", ManagedRegistration.model_validate(registration))
