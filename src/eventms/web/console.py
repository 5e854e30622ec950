"""The organizer console, `/admin`: signing in with an API key, and the events
(search, paging, create, edit, delete). An event's own page, its registrations,
waiting list and check-in are in console_events.py.

Every page offers only what the key's scopes allow, and every route checks it again
(`console_rule`): a link hidden is not a permission withheld.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from eventms.access.scopes import Scope
from eventms.access.tokens import token_hash
from eventms.api.deps import SessionDep, StateDep
from eventms.db.queries import Page
from eventms.errors import DomainError, NotFound
from eventms.events import service as events
from eventms.events.models import Event
from eventms.events.schemas import EventCreate, EventUpdate
from eventms.web import optional
from eventms.web.console_access import ConsoleDep, console_rule, public_console_rule
from eventms.web.forms import domain_error_words, parse, undo_refused_write
from eventms.web.pages import page_number

router = APIRouter(prefix="/admin", include_in_schema=False)

EVENTS_PER_PAGE = 25
NOTICES = {
    "created": "Event created.",
    "updated": "Event saved.",
    "deleted": "Event deleted.",
    "canceled": "Registration canceled.",
    "removed": "Removed from the waiting list.",
    "signed-out": "Signed out.",
}
# The form's fields, by the API's names; the nullable ones an edit may empty.
EVENT_FIELDS = ("name", "description", "date", "startTime", "timezone", "location", "maxAttendees")
CLEARABLE = ("description", "startTime", "timezone", "location")


@router.get("", response_class=HTMLResponse, dependencies=[public_console_rule()])
async def console_home(console: ConsoleDep, session: SessionDep) -> Response:
    if not console.signed_in:
        return console.page("admin/sign-in.html", errors={})
    request = console.request
    search = request.query_params.get("q", "").strip()[:255]
    number = page_number(request.query_params.get("page"))
    found, total = await events.find_events(
        session, page=Page(page=number, limit=EVENTS_PER_PAGE), name=search or None
    )
    return console.page(
        "admin/events.html",
        events=found,
        search=search,
        query=urlencode({"q": search}) if search else "",
        number=number,
        pages=max(1, -(-total // EVENTS_PER_PAGE)),
        total=total,
        notice=NOTICES.get(request.query_params.get("notice", "")),
        checked_in=optional.checked_in_count,
    )


@router.post("/sign-in", response_class=HTMLResponse, dependencies=[public_console_rule()])
async def sign_in(console: ConsoleDep, state: StateDep) -> Response:
    if console.open:
        return console.redirect("/admin")
    token = console.form.get("apiKey", "").strip()
    if not token:
        return console.page("admin/sign-in.html", 422, errors={"apiKey": "Enter an API key."})
    digest = token_hash(token)
    caller = await state["keys"].resolve_digest(digest)
    if caller is None:
        errors = {"apiKey": "This API key is unknown or revoked."}
        return console.page("admin/sign-in.html", 401, errors=errors)
    console.session = console.session.signed_in(digest)
    return console.redirect("/admin")


@router.post("/sign-out", dependencies=[console_rule(None)])
async def sign_out(console: ConsoleDep) -> Response:
    console.session = console.session.signed_out()
    return console.redirect("/admin?notice=signed-out")


# --- create, edit, delete -----------------------------------------------------------


def _event_form(event: Event) -> dict[str, str]:
    return {
        "name": event.name,
        "description": event.description or "",
        "date": event.date.isoformat(),
        "startTime": event.start_time.strftime("%H:%M") if event.start_time else "",
        "timezone": event.timezone or "",
        "location": event.location or "",
        "maxAttendees": str(event.max_attendees),
    }


def _typed(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields as the API's JSON would carry them (a number as a number)."""
    fields: dict[str, Any] = {name: form.get(name, "") for name in EVENT_FIELDS}
    seats = fields["maxAttendees"].strip()
    fields["maxAttendees"] = int(seats) if seats.isdigit() else seats
    return fields


def _refused(error: DomainError) -> dict[str, str]:
    field, words = domain_error_words(error)
    return {field or "form": words}


@router.get(
    "/events/new", response_class=HTMLResponse, dependencies=[console_rule(Scope.EVENTS_WRITE)]
)
async def new_event(console: ConsoleDep) -> Response:
    return console.page("admin/event-form.html", event=None, form={}, errors={})


@router.post(
    "/events/new", response_class=HTMLResponse, dependencies=[console_rule(Scope.EVENTS_WRITE)]
)
async def create_event(console: ConsoleDep, session: SessionDep) -> Response:
    fields = _typed(console.form)
    body, errors = parse(EventCreate, fields)
    if body is None:
        return console.page(
            "admin/event-form.html", 422, event=None, form=console.form, errors=errors
        )
    try:
        event = await events.create_event(session, fields=body)
    except DomainError as error:
        await undo_refused_write(session)
        return console.page(
            "admin/event-form.html",
            error.status_code,
            event=None,
            form=console.form,
            errors=_refused(error),
        )
    return console.redirect(f"/admin/events/{event.id}?notice=created")


async def _event(session: SessionDep, event_id: str) -> Event | None:
    try:
        return await session.get(Event, uuid.UUID(event_id))
    except ValueError:
        return None


def _missing(console: ConsoleDep) -> Response:
    return console.page("admin/refused.html", 404, reason="There is no such event.")


@router.get(
    "/events/{event_id}/edit",
    response_class=HTMLResponse,
    dependencies=[console_rule(Scope.EVENTS_WRITE)],
)
async def edit_event(event_id: str, console: ConsoleDep, session: SessionDep) -> Response:
    event = await _event(session, event_id)
    if event is None:
        return _missing(console)
    return console.page("admin/event-form.html", event=event, form=_event_form(event), errors={})


@router.post(
    "/events/{event_id}/edit",
    response_class=HTMLResponse,
    dependencies=[console_rule(Scope.EVENTS_WRITE)],
)
async def update_event(event_id: str, console: ConsoleDep, session: SessionDep) -> Response:
    event = await _event(session, event_id)
    if event is None:
        return _missing(console)
    # Every field is sent: an emptied optional field is cleared, an emptied
    # required one is refused by the schema.
    fields = _typed(console.form)
    given = {k: None if v == "" and k in CLEARABLE else v for k, v in fields.items()}
    body, errors = parse(EventUpdate, given, drop_blank=False)
    if body is None:
        return console.page(
            "admin/event-form.html", 422, event=event, form=console.form, errors=errors
        )
    try:
        changes = body.model_dump(exclude_unset=True)
        await events.update_event(session, event_id=event.id, changes=changes)
    except DomainError as error:
        await undo_refused_write(session)
        await session.refresh(event)
        return console.page(
            "admin/event-form.html",
            error.status_code,
            event=event,
            form=console.form,
            errors=_refused(error),
        )
    return console.redirect(f"/admin/events/{event.id}?notice=updated")


@router.get(
    "/events/{event_id}/delete",
    response_class=HTMLResponse,
    dependencies=[console_rule(Scope.EVENTS_WRITE)],
)
async def confirm_delete(event_id: str, console: ConsoleDep, session: SessionDep) -> Response:
    event = await _event(session, event_id)
    if event is None:
        return _missing(console)
    return console.page("admin/event-delete.html", event=event)


@router.post(
    "/events/{event_id}/delete",
    response_class=HTMLResponse,
    dependencies=[console_rule(Scope.EVENTS_WRITE)],
)
async def delete_event(event_id: str, console: ConsoleDep, session: SessionDep) -> Response:
    try:
        await events.delete_event(session, event_id=uuid.UUID(event_id))
    except (ValueError, NotFound):
        return _missing(console)
    return console.redirect("/admin?notice=deleted")
