"""`/checkin` routes (scope `checkin`): scan a ticket in, revert a check-in."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from eventms.access.deps import requires
from eventms.access.scopes import Scope
from eventms.api.deps import SessionDep
from eventms.http.envelope import Envelope, one
from eventms.http.errors import ERROR_RESPONSES
from eventms.http.ids import parse_id
from eventms.tickets import service
from eventms.tickets.schemas import CheckinCreate, CheckinOut

CHECKIN = [requires(Scope.CHECKIN)]
router = APIRouter(prefix="/checkin", tags=["Check-in"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[CheckinOut],
    summary="Check a ticket in",
    description="409 `Already checked in at <time>` for a second scan (unless it repeats"
    " the first one's `nonce`), or `This ticket is for another event` when `eventId`"
    " is given and differs; 404 `Ticket not found` for an unknown or canceled ticket.",
    dependencies=CHECKIN,
)
async def check_in(body: CheckinCreate, session: SessionDep) -> Response:
    checkin = await service.check_in(
        session, code=body.code, event_id=body.event_id, nonce=body.nonce
    )
    return one(201, "Checked in", checkin)


@router.delete(
    "/{registration_id}",
    response_model=Envelope[CheckinOut],
    summary="Revert a check-in",
    description="404 when the registration is not checked in.",
    dependencies=CHECKIN,
)
async def revert_checkin(registration_id: str, session: SessionDep) -> Response:
    checkin = await service.revert(
        session, registration_id=parse_id(registration_id, "Registration")
    )
    return one(200, "Check-in reverted", checkin)
