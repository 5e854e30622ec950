"""The organizer console's session: a signed cookie, and the CSRF token it carries.

The cookie holds the SHA-256 of the API key the organizer signed in with (the key
ring finds keys by that hash), never the key itself: a stolen cookie opens the
console for its lifetime but is no API credential. It is signed with a key derived
from SECRET_KEY (itsdangerous, with a purpose of its own so that no manage token
or other signature can pass for it), HttpOnly (no script reads it), SameSite=Strict
(no other site's page sends it) and limited to `/admin`.

Every console form carries the session's CSRF token in a hidden field, and a post
whose field does not match is refused: SameSite already stops cross-site posts in
today's browsers, the token also in older ones and from sibling subdomains. With
AUTH_MODE=open the session holds the CSRF token only.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "eventms_console"
COOKIE_PATH = "/admin"
MAX_AGE_SECONDS = 8 * 3600  # a working day; then sign in again
CSRF_FIELD = "csrf"
_PURPOSE = "eventms console session v1"


@dataclass(frozen=True)
class ConsoleSession:
    csrf: str
    key_digest: str | None = None  # None: not signed in (or AUTH_MODE=open)
    fresh: bool = False  # made for this request: the response must set it

    def signed_in(self, key_digest: str) -> ConsoleSession:
        # A new CSRF token with every sign-in: one seen before it is worth nothing.
        return ConsoleSession(csrf=secrets.token_urlsafe(24), key_digest=key_digest, fresh=True)

    def signed_out(self) -> ConsoleSession:
        return ConsoleSession(csrf=secrets.token_urlsafe(24), fresh=True)

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class ConsoleSessions:
    def __init__(self, secret_key: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=_PURPOSE)

    def read(self, request: Request) -> ConsoleSession:
        """The request's session, or a fresh one (not signed in) when it has none,
        or one that is forged, expired or malformed."""
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data = self._serializer.loads(raw, max_age=MAX_AGE_SECONDS)
            except BadSignature:
                data = None
            if isinstance(data, dict) and isinstance(data.get("c"), str):
                digest = data.get("k")
                return ConsoleSession(csrf=data["c"], key_digest=digest if digest else None)
        return ConsoleSession(csrf=secrets.token_urlsafe(24), fresh=True)

    def write(self, request: Request, response: Response, session: ConsoleSession) -> None:
        """Set the cookie on `response` when `session` is new or changed."""
        if not session.fresh:
            return
        value = self._serializer.dumps({"c": session.csrf, "k": session.key_digest})
        response.set_cookie(
            COOKIE,
            value,
            max_age=MAX_AGE_SECONDS,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
