"""Who is using the organizer console, and the access rules its routes declare.

The caller comes from the console's session cookie (console_session.py), not from an
Authorization header: a browser sends no bearer token. Each console route declares
`console_rule(scope)` (or `console_rule(None)`: any signed-in key) the way API
routes declare `requires(scope)`, so the app refuses to start with a page that
declares nothing. A refusal is a page in words (sign in, or what the key lacks),
never the API's JSON. With AUTH_MODE=open everyone may do everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from eventms.access.caller import EVERYONE, Caller
from eventms.access.deps import access_rule
from eventms.access.scopes import Scope
from eventms.api.deps import StateDep
from eventms.web.console_session import CSRF_FIELD, ConsoleSession, ConsoleSessions
from eventms.web.forms import FormTooLarge, read_form
from eventms.web.rendering import page

SIGNED_IN = "console"  # the rule of pages any signed-in key may open
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Console:
    """The console's caller (None: not signed in), its session, the posted form."""

    request: Request
    sessions: ConsoleSessions
    session: ConsoleSession
    caller: Caller | None
    form: dict[str, str] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.caller is not None and self.caller.open

    @property
    def signed_in(self) -> bool:
        return self.caller is not None

    @property
    def key_name(self) -> str | None:
        return self.caller.key_name if self.caller else None

    def may(self, scope: Scope | str) -> bool:
        return self.caller is not None and self.caller.may(Scope(scope))

    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        response = page(template, status, private=True, console=self, **context)
        self.sessions.write(self.request, response, self.session)
        return response

    def redirect(self, to: str) -> Response:
        response = RedirectResponse(to, status_code=303)
        self.sessions.write(self.request, response, self.session)
        return response


class ConsoleRefusal(Exception):
    """A console request that may not go on: answered by `refusal_page`."""

    def __init__(self, console: Console, status: int, reason: str) -> None:
        super().__init__(reason)
        self.console = console
        self.status = status
        self.reason = reason


async def resolve_console(request: Request, state: StateDep) -> Console:
    sessions = state["console_sessions"]
    session = sessions.read(request)
    keys = state["keys"]
    caller: Caller | None = None
    if keys.open_mode:
        caller = EVERYONE
    elif session.key_digest is not None:
        caller = await keys.resolve_digest(session.key_digest)
        if caller is None:  # revoked since: the session ends
            session = session.signed_out()
    console = Console(request, sessions, session, caller)
    if request.method in WRITES:
        try:
            console.form = await read_form(request)
        except FormTooLarge:
            raise ConsoleRefusal(console, 413, "That was too much to send.") from None
        if not session.csrf_matches(console.form.get(CSRF_FIELD)):
            # A fresh session has a new token: the reloaded form will carry it.
            raise ConsoleRefusal(
                console,
                403,
                "This form has expired or did not come from this console."
                " Go back, reload the page and send it again.",
            )
    return console


ConsoleDep = Annotated[Console, Depends(resolve_console)]


def console_rule(scope: Scope | None) -> DependsParam:
    """Only a signed-in key (with `scope`, or `admin`, when given); anyone with
    AUTH_MODE=open. Also checks the CSRF token of every post."""

    async def check(console: ConsoleDep) -> None:
        if not console.signed_in:
            raise ConsoleRefusal(console, 401, "sign in")
        if scope is not None and not console.may(scope):
            raise ConsoleRefusal(console, 403, f"This key lacks the scope {scope}.")

    return access_rule(scope or SIGNED_IN, check)


def refusal_page(request: Request, refusal: Exception) -> Response:
    assert isinstance(refusal, ConsoleRefusal)
    console = refusal.console
    if refusal.status == 401:
        return console.redirect("/admin")
    return console.page("admin/refused.html", refusal.status, reason=refusal.reason)


def public_console_rule() -> DependsParam:
    """The rule of the sign-in page and its post: anyone (CSRF still checked)."""

    async def check(console: ConsoleDep) -> None:
        return None

    return access_rule("public", check)
