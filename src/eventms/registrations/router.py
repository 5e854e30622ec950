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
    registered = await service.register(
        session, event_id=body.event_id, attendee_id=body.attendee_id
    )
    # The ticket code is for `registrations:read`, not for every key that may register.
    if caller.may(Scope.REGISTRATIONS_READ):
        shown = registered.with_ticket_json
    else:
        shown = registered.out_json
    return json_response(envelope_bytes(201, "Registration created successfully", shown), 201)


@router.get(
    "",
    response_model=PageEnvelope[RegistrationWithTicket],
    summary="List registrations",
    dependencies=READ,
)
async def list_registrations(session: SessionDep, cache: CacheDep, page: PageDep) -> Response:
    async def render() -> Rendered:
        found, total = await service.registrations_json(session, page=page)
        return Rendered(page_of("List of registrations", found, page, total))

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
        found, event_id, attendee_id = await service.registration_json(
            session, registration_id=wanted
        )
        body = envelope_bytes(200, "Registration found", found)
        return Rendered(body, shows_registration(event_id, attendee_id))

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
