"""`/registration` routes: parse, call the service, wrap in the envelope."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from eventms.access.deps import CallerDep, requires
from eventms.access.scopes import Scope
from eventms.api.deps import CacheDep, PageDep, SessionDep
from eventms.cache.engine import Rendered
from eventms.cache.fast_path import by_id
from eventms.cache.keys import shows_registration
from eventms.http.envelope import Envelope, PageEnvelope, json_response, one, one_body, page_body
from eventms.http.errors import ERROR_RESPONSES
from eventms.http.ids import parse_id
from eventms.registrations import service
from eventms.registrations.schemas import (
    RegistrationCreate,
    RegistrationOut,
    RegistrationWithTicket,
)

READ = [requires(Scope.REGISTRATIONS_READ)]
WRITE = [requires(Scope.REGISTRATIONS_WRITE)]

router = APIRouter(prefix="/registration", tags=["Registrations"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[RegistrationOut],
    summary="Register an attendee for an event",
    description="409 when the attendee is already registered or the event is full; "
    "404 when the event or the attendee does not exist.",
    dependencies=WRITE,
)
async def register(body: RegistrationCreate, session: SessionDep, caller: CallerDep) -> Response:
    registration = await service.register(
        session, event_id=body.event_id, attendee_id=body.attendee_id
    )
    # The ticket code is for `registrations:read`, not for every key that may register.
    shown = RegistrationWithTicket if caller.may(Scope.REGISTRATIONS_READ) else RegistrationOut
    return one(201, "Registration created successfully", shown.model_validate(registration))


@router.get(
    "",
    response_model=PageEnvelope[RegistrationWithTicket],
    summary="List registrations",
    dependencies=READ,
)
async def list_registrations(session: SessionDep, cache: CacheDep, page: PageDep) -> Response:
    async def render() -> Rendered:
        registrations, total = await service.list_registrations(session, page=page)
        found = [RegistrationWithTicket.model_validate(r) for r in registrations]
        body = page_body("List of registrations", found, RegistrationWithTicket, page, total)
        return Rendered(body)

    return json_response(await cache.registrations_page(page.page, page.limit, render))


@router.get(
    "/{registration_id}",
    response_model=Envelope[RegistrationWithTicket],
    summary="Get a registration",
    dependencies=READ,
)
@by_id("registration")
async def get_registration(registration_id: str, session: SessionDep, cache: CacheDep) -> Response:
    wanted = parse_id(registration_id, "Registration")

    async def render() -> Rendered:
        registration = await service.get_registration(session, registration_id=wanted)
        found = RegistrationWithTicket.model_validate(registration)
        body = one_body(200, "Registration found", found)
        return Rendered(body, shows_registration(registration.event_id, registration.attendee_id))

    return json_response(await cache.one("registration", wanted, render))


@router.delete(
    "/{registration_id}",
    response_model=Envelope[RegistrationOut],
    summary="Cancel a registration",
    dependencies=WRITE,
)
async def cancel_registration(registration_id: str, session: SessionDep) -> Response:
    registration = await service.cancel(
        session, registration_id=parse_id(registration_id, "Registration")
    )
    return one(200, "Registration canceled", RegistrationOut.model_validate(registration))
