"""The attendee's manage page, `/manage/{token}`: the link every confirmation mail
carries. Server-rendered HTML, no script and nothing from a CDN; a minimal page
until the web front end replaces it.

Only the POST cancels: mail scanners and link previews follow the GET.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from eventms.access.deps import public
from eventms.api.deps import ManageTokensDep, SessionDep
from eventms.errors import NotFound
from eventms.registrations.models import Registration
from eventms.selfservice import service

router = APIRouter(include_in_schema=False, dependencies=[public])

_templates = Environment(
    loader=PackageLoader("eventms.web", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
    undefined=StrictUndefined,
)

# The token is in the URL: keep it out of caches, Referer headers and search engines.
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline';"
    " form-action 'self'; frame-ancestors 'none'",
}


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _when(registration: Registration) -> str:
    event = registration.event
    day = f"{event.date:%A}, {event.date.day} {event.date:%B %Y}"
    if event.start_time is None:
        return day
    return f"{day} at {event.start_time:%H:%M}" + (f" ({event.timezone})" if event.timezone else "")


@router.get("/manage/{token}", response_class=HTMLResponse)
async def manage_page(token: str, session: SessionDep, tokens: ManageTokensDep) -> HTMLResponse:
    try:
        registration = await service.managed_registration(
            session, registration_id=tokens.registration_id(token)
        )
    except NotFound:
        return _page("not-found.html", 404)
    return _page("manage.html", registration=registration, when=_when(registration), token=token)


@router.post("/manage/{token}/cancel", response_class=HTMLResponse)
async def cancel_page(token: str, session: SessionDep, tokens: ManageTokensDep) -> HTMLResponse:
    try:
        registration = await service.cancel_managed(
            session, registration_id=tokens.registration_id(token)
        )
    except NotFound:
        return _page("not-found.html", 404)
    return _page("canceled.html", registration=registration, when=_when(registration))
