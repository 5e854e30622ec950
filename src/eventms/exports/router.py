"""`/event/{id}/attendees.csv` (scope `attendees:read`) and `/events.ics` (anyone)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from eventms.access.deps import public, requires
from eventms.access.scopes import Scope
from eventms.api.deps import CacheDep, SessionDep, StateDep
from eventms.cache.engine import Rendered
from eventms.exports import service
from eventms.exports.attendees_csv import attendee_rows, file_name
from eventms.exports.calendar import events_feed
from eventms.http.errors import ERROR_RESPONSES
from eventms.http.ids import parse_id

router = APIRouter(tags=["Exports"], responses=ERROR_RESPONSES)

CSV = "text/csv; charset=utf-8"
ICS = "text/calendar; charset=utf-8"


@router.get(
    "/event/{event_id}/attendees.csv",
    response_class=StreamingResponse,
    summary="Export an event's attendees as CSV",
    description="Columns `name,email,registeredAt,checkedInAt` (RFC 4180, UTF-8);"
    " a cell starting with `=`, `+`, `-`, `@`, tab or CR is prefixed with `'`.",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    dependencies=[requires(Scope.ATTENDEES_READ)],
)
async def export_attendees(event_id: str, session: SessionDep, state: StateDep) -> Response:
    wanted = parse_id(event_id, "Event")
    name = await service.event_name(session, event_id=wanted)
    # The rows stream from a connection of their own: the request's session is
    # closed once this returns, before the body is sent.
    return StreamingResponse(
        attendee_rows(state["engine"], wanted),
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="{file_name(name)}"'},
    )


@router.get(
    "/events.ics",
    response_class=Response,
    summary="Calendar feed of upcoming events",
    description="One VEVENT per event dated today (UTC) or later, times in UTC, the"
    " same UID as the confirmation mail's invitation.",
    responses={200: {"content": {"text/calendar": {"schema": {"type": "string"}}}}},
    dependencies=[public],
)
async def calendar_feed(session: SessionDep, cache: CacheDep, state: StateDep) -> Response:
    today = datetime.now(UTC).date()

    async def render() -> Rendered:
        events = await service.upcoming_events(session, today=today)
        zone = state["settings"].default_event_timezone
        return Rendered(events_feed(events, default_zone=zone))

    return Response(await cache.events_feed(today, render), media_type=ICS)
