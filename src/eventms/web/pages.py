"""The public pages: upcoming events (`/`), one event with its signup form
(`/events/{id}`), and the attendee's own page (`/manage/{token}`, the link every
confirmation mail carries).

They call the services the API calls; a refusal is shown in words on the page,
never as the API's JSON. Only a POST changes anything: mail scanners and link
previews follow GETs, so canceling from a manage link takes a confirmation step.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.access.deps import public
from eventms.api.deps import ManageTokensDep, SessionDep, StateDep
from eventms.db.queries import Page
from eventms.errors import DomainError, NotFound
from eventms.events import service as events
from eventms.events.models import Event
from eventms.http.ratelimit import client_of, spend
from eventms.registrations.models import Registration
from eventms.selfservice import service as selfservice
from eventms.selfservice.schemas import SignupCreate
from eventms.waitlist.service import WaitingPlace
from eventms.web import optional
from eventms.web.forms import (
    FormTooLarge,
    domain_error_words,
    parse,
    read_form,
    undo_refused_write,
)
from eventms.web.rendering import page

router = APIRouter(include_in_schema=False, dependencies=[public])

EVENTS_PER_PAGE = 20


def page_number(raw: str | None) -> int:
    """`?page=`: a bad or missing number is the first page, not an error page."""
    try:
        number = int(raw or 1)
    except ValueError:
        return 1
    return min(max(number, 1), 1_000_000)


@router.get("/", response_class=HTMLResponse)
async def upcoming_events(request: Request, session: SessionDep) -> HTMLResponse:
    number = page_number(request.query_params.get("page"))
    today = datetime.now(UTC).date()
    found, total = await events.find_events(
        session, page=Page(page=number, limit=EVENTS_PER_PAGE), date_from=today
    )
    pages = max(1, -(-total // EVENTS_PER_PAGE))
    return page("index.html", events=found, number=number, pages=pages, total=total)


async def _event_or_none(session: AsyncSession, raw_id: str) -> Event | None:
    try:
        return await session.get(Event, uuid.UUID(raw_id))
    except ValueError:
        return None


def _not_found() -> HTMLResponse:
    return page("not-found.html", 404, what="event")


@router.get("/events/{event_id}", response_class=HTMLResponse)
async def event_page(event_id: str, session: SessionDep) -> HTMLResponse:
    event = await _event_or_none(session, event_id)
    if event is None:
        return _not_found()
    return page("event.html", event=event, form={}, errors={}, outcome=None)


@router.post("/events/{event_id}/signup", response_class=HTMLResponse)
async def sign_up(
    event_id: str, request: Request, session: SessionDep, state: StateDep
) -> HTMLResponse:
    event = await _event_or_none(session, event_id)
    if event is None:
        return _not_found()

    def again(status: int, **context: Any) -> HTMLResponse:
        return page("event.html", status, event=event, outcome=None, **context)

    try:
        form = await read_form(request)
    except FormTooLarge:
        return again(413, form={}, errors={"form": "That was too much to send."})
    body, errors = parse(SignupCreate, form)
    if body is None:
        return again(422, form=form, errors=errors)
    limiter = state["signup_limiter"]
    try:
        if limiter is not None:
            await spend(limiter, client_of(request.scope, limiter, state["keys"]))
        outcome = await selfservice.sign_up(
            session, event_id=event.id, name=body.name, email=body.email
        )
    except DomainError as error:
        await undo_refused_write(session)
        await session.refresh(event)
        field, words = domain_error_words(error)
        return again(error.status_code, form=form, errors={field or "form": words})
    await session.refresh(event)
    position = outcome.position if isinstance(outcome, WaitingPlace) else None
    return page("event.html", 201, event=event, form={}, errors={}, outcome={"position": position})


# --- the attendee's page ----------------------------------------------------------------


async def _managed(
    session: AsyncSession, tokens: ManageTokensDep, token: str
) -> Registration | None:
    try:
        return await selfservice.managed_registration(
            session, registration_id=tokens.registration_id(token)
        )
    except NotFound:
        return None


def _gone() -> HTMLResponse:
    return page("not-found.html", 404, private=True, what="registration")


@router.get("/manage/{token}", response_class=HTMLResponse)
async def manage_page(token: str, session: SessionDep, tokens: ManageTokensDep) -> HTMLResponse:
    registration = await _managed(session, tokens, token)
    if registration is None:
        return _gone()
    code = optional.ticket_code(registration)
    qr = optional.qr_svg_data_uri(code) if code else None
    return page(
        "manage.html", private=True, registration=registration, token=token, code=code, qr=qr
    )


@router.get("/manage/{token}/cancel", response_class=HTMLResponse)
async def confirm_cancel(token: str, session: SessionDep, tokens: ManageTokensDep) -> HTMLResponse:
    registration = await _managed(session, tokens, token)
    if registration is None:
        return _gone()
    return page("manage-cancel.html", private=True, registration=registration, token=token)


@router.post("/manage/{token}/cancel", response_class=HTMLResponse)
async def cancel(token: str, session: SessionDep, tokens: ManageTokensDep) -> HTMLResponse:
    try:
        registration = await selfservice.cancel_managed(
            session, registration_id=tokens.registration_id(token)
        )
    except NotFound:
        return _gone()
    return page("canceled.html", private=True, registration=registration)


@router.get("/manage/{token}/event.ics")
async def calendar_file(
    token: str, session: SessionDep, tokens: ManageTokensDep, state: StateDep
) -> Response:
    registration = await _managed(session, tokens, token)
    if registration is None:
        return _gone()
    body = event_calendar(registration.event, state["settings"].default_event_timezone)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="event.ics"',
            "Cache-Control": "no-store",
        },
    )


def event_calendar(event: Event, default_zone: str) -> bytes:
    """The event as an iCalendar file, with the UID the confirmation mail's
    invitation uses (a calendar that has both keeps one entry)."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//eventms//web//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    entry = icalendar.Event()
    entry.add("uid", f"{event.id}@eventms")
    entry.add("dtstamp", datetime.now(UTC))
    entry.add("summary", event.name)
    if event.start_time is None:
        entry.add("dtstart", event.date)
        entry.add("dtend", event.date + timedelta(days=1))
    else:
        zone = ZoneInfo(event.timezone or default_zone)
        entry.add("dtstart", datetime.combine(event.date, event.start_time, zone))
        entry.add("duration", timedelta(hours=1))
    if event.location:
        entry.add("location", event.location)
    if event.description:
        entry.add("description", event.description)
    calendar.add_component(entry)
    return bytes(calendar.to_ical())
