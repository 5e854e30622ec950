"""The console's page of one event: live counters, its registrations and waiting
list (cancel, remove, CSV export), and the check-in desk.

What a key may see follows PRODUCT.md's scopes: registrations and the waiting list
with `registrations:read`, attendees' emails and the CSV with `attendees:read`,
the check-in desk with `checkin` (names, never emails). Tickets and the CSV export
are shown once their features are installed (web/optional.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from eventms.access.scopes import Scope
from eventms.api.deps import SessionDep, StateDep
from eventms.db.queries import Page
from eventms.errors import DomainError, NotFound
from eventms.events.models import Event
from eventms.registrations import service as registrations
from eventms.waitlist import service as waitlist
from eventms.web import optional
from eventms.web.console import NOTICES
from eventms.web.console_access import Console, ConsoleDep, console_rule
from eventms.web.forms import undo_refused_write
from eventms.web.pages import page_number
from eventms.web.rendering import PRIVATE_HEADERS

router = APIRouter(prefix="/admin", include_in_schema=False)

ROWS_PER_PAGE = 50


async def _event(session: SessionDep, event_id: str) -> Event | None:
    try:
        return await session.get(Event, uuid.UUID(event_id))
    except ValueError:
        return None


def _missing(console: Console, what: str = "event") -> Response:
    return console.page("admin/refused.html", 404, reason=f"There is no such {what}.")


def counters(event: Event) -> dict[str, Any]:
    return {
        "registered": event.registered_count,
        "maxAttendees": event.max_attendees,
        "availableSeats": event.available_seats,
        "waiting": event.waitlist_count,
        "checkedIn": optional.checked_in_count(event),
    }


@router.get("/events/{event_id}", response_class=HTMLResponse, dependencies=[console_rule(None)])
async def event_page(event_id: str, console: ConsoleDep, session: SessionDep) -> Response:
    event = await _event(session, event_id)
    if event is None:
        return _missing(console)
    query = console.request.query_params
    context: dict[str, Any] = {"registrations": None, "waiting": None}
    if console.may(Scope.REGISTRATIONS_READ):
        number = page_number(query.get("page"))
        page = Page(page=number, limit=ROWS_PER_PAGE)
        found, total = await registrations.list_event_registrations(
            session, event_id=event.id, page=page
        )
        context["registrations"] = found
        context["number"], context["pages"] = number, max(1, -(-total // ROWS_PER_PAGE))
        waiting, _ = await waitlist.list_waitlist(
            session, event_id=event.id, page=Page(page=1, limit=ROWS_PER_PAGE)
        )
        context["waiting"] = waiting
    return console.page(
        "admin/event.html",
        event=event,
        counters=counters(event),
        notice=NOTICES.get(query.get("notice", "")),
        ticket_code=optional.ticket_code,
        csv=optional.has_csv_export() and console.may(Scope.ATTENDEES_READ),
        checkin=optional.has_checkin() and console.may(Scope.CHECKIN),
        **context,
    )


@router.get("/events/{event_id}/counters", dependencies=[console_rule(None)])
async def event_counters(event_id: str, session: SessionDep) -> Response:
    """The live counters' numbers, fetched by static/console.js when the event's
    Socket.IO room says something changed."""
    event = await _event(session, event_id)
    if event is None:
        return JSONResponse({"message": "Event not found"}, 404, headers=PRIVATE_HEADERS)
    return JSONResponse(counters(event), headers=PRIVATE_HEADERS)


@router.post(
    "/registrations/{registration_id}/cancel",
    dependencies=[console_rule(Scope.REGISTRATIONS_WRITE)],
)
async def cancel_registration(
    registration_id: str, console: ConsoleDep, session: SessionDep
) -> Response:
    try:
        canceled = await registrations.cancel(session, registration_id=uuid.UUID(registration_id))
    except (ValueError, NotFound):
        return _missing(console, "registration")
    return console.redirect(f"/admin/events/{canceled.event_id}?notice=canceled#registrations")


@router.post(
    "/waitlist/{entry_id}/remove",
    dependencies=[console_rule(Scope.REGISTRATIONS_WRITE)],
)
async def remove_from_waitlist(entry_id: str, console: ConsoleDep, session: SessionDep) -> Response:
    try:
        place = await waitlist.leave_waitlist(session, entry_id=uuid.UUID(entry_id))
    except (ValueError, NotFound):
        return _missing(console, "waiting-list entry")
    return console.redirect(f"/admin/events/{place.event_id}?notice=removed#waiting")


@router.get(
    "/events/{event_id}/attendees.csv",
    dependencies=[console_rule(Scope.ATTENDEES_READ)],
)
async def export_attendees(
    event_id: str, console: ConsoleDep, session: SessionDep, state: StateDep
) -> Response:
    event = await _event(session, event_id)
    if event is None:
        return _missing(console)
    rows = optional.attendees_csv(state["engine"], event.id)
    if rows is None:
        return console.page("admin/refused.html", 404, reason="CSV export is not installed.")
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{optional.csv_file_name(event.name)}"',
            "Cache-Control": "no-store",
        },
    )


# --- check-in ---------------------------------------------------------------------------


async def _desk(session: SessionDep, event_id: str | None) -> Event | None:
    """The event the desk checks in for (any, when none is named)."""
    return await _event(session, event_id) if event_id else None


@router.get("/checkin", response_class=HTMLResponse, dependencies=[console_rule(Scope.CHECKIN)])
async def checkin_page(console: ConsoleDep, session: SessionDep) -> Response:
    if not optional.has_checkin():
        return console.page("admin/refused.html", 404, reason="Check-in is not installed.")
    event = await _desk(session, console.request.query_params.get("event"))
    return console.page("admin/checkin.html", event=event, result=None, error=None, code="")


@router.post("/checkin", response_class=HTMLResponse, dependencies=[console_rule(Scope.CHECKIN)])
async def check_in(console: ConsoleDep, session: SessionDep) -> Response:
    if not optional.has_checkin():
        return console.page("admin/refused.html", 404, reason="Check-in is not installed.")
    event = await _desk(session, console.form.get("event"))
    code = console.form.get("code", "").strip()
    if not code:
        return console.page(
            "admin/checkin.html",
            422,
            event=event,
            result=None,
            error="Enter a ticket code.",
            code="",
        )
    try:
        result = await optional.check_in(
            session, code=code, event_id=event.id if event is not None else None
        )
    except DomainError as error:
        await undo_refused_write(session)
        if event is not None:
            await session.refresh(event)
        return console.page(
            "admin/checkin.html",
            error.status_code,
            event=event,
            result=None,
            error=error.message,
            code=code,
        )
    return console.page("admin/checkin.html", 201, event=event, result=result, error=None, code="")
