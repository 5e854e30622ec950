"""How every page is rendered: one Jinja2 environment, the headers every page
carries, and the few words pages use for dates and seats."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from eventms.events.models import Event
from eventms.web import optional

templates = Environment(
    loader=PackageLoader("eventms.web", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# Scripts and styles from this origin only (no inline script, no CDN); the
# Socket.IO client connects back to it. Forms post only here.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PUBLIC_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Pages with a secret in the URL or a signed-in organizer's data: never cached,
# never indexed, the URL never sent on in a Referer.
PRIVATE_HEADERS = {
    **PUBLIC_HEADERS,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


def page(
    template: str,
    status: int = 200,
    *,
    private: bool = False,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    html = templates.get_template(template).render(**context)
    sent = {**(PRIVATE_HEADERS if private else PUBLIC_HEADERS), **(headers or {})}
    return HTMLResponse(html, status_code=status, headers=sent)


def long_date(day: date) -> str:
    """`Friday, 15 January 2030`."""
    return f"{day:%A}, {day.day} {day:%B %Y}"


def when(day: date, start: time | None, zone: str | None) -> str:
    if start is None:
        return long_date(day)
    return f"{long_date(day)} at {start:%H:%M}" + (f" ({zone})" if zone else "")


def event_when(event: Event) -> str:
    return when(event.date, event.start_time, event.timezone)


def seats_text(available: int) -> str:
    """What the lists say about seats (static/live.js says the same)."""
    if available <= 0:
        return "Full"
    return "1 seat left" if available == 1 else f"{available} seats left"


templates.globals.update(
    event_when=event_when,
    seats_text=seats_text,
    long_date=long_date,
    has_checkin=optional.has_checkin,
)
