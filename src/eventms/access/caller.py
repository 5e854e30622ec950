"""The caller of a request: everyone (`AUTH_MODE=open`), anonymous, or an API key.

Checking a key must not cost a database round trip per request: each process keeps
what it looked up (the key's id, name and scopes, or that the token is unknown) for
`KEY_CACHE_SECONDS`, so a revoked key is refused by every instance within that time
(and at once by the instance that revoked it). Middleware that runs before routing
(rate limits, the cache fast path) only reads what is kept (`known`); the route's
dependency looks a token up when it is not (`resolve`), after the rate limit.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Scope as AsgiScope

from eventms.access.scopes import Scope, allows
from eventms.access.tokens import token_hash

KEY_CACHE_SECONDS = 2.0  # well inside the promised 5 s for a revocation
_KEPT_AT_MOST = 10_000  # tokens remembered per process (unknown ones included)


@dataclass(frozen=True)
class Caller:
    open: bool = False  # AUTH_MODE=open: the original's contract, everything allowed
    key_id: uuid.UUID | None = None
    key_name: str | None = None
    scopes: frozenset[str] = frozenset()
    token_given: bool = False  # a bearer token was presented (valid or not)

    def may(self, scope: Scope) -> bool:
        return self.open or allows(self.scopes, scope)

    @property
    def full_view(self) -> bool:
        """Whether this caller sees attendee data (the full view of events)."""
        return self.may(Scope.ATTENDEES_READ)

    @property
    def view(self) -> str:
        return "full" if self.full_view else "public"


EVERYONE = Caller(open=True)
ANONYMOUS = Caller()
ADMIN_KEY_NAME = "ADMIN_API_KEY"
CONFIGURED_ADMIN = Caller(
    key_id=uuid.uuid5(uuid.NAMESPACE_URL, "eventms:ADMIN_API_KEY"),
    key_name=ADMIN_KEY_NAME,
    scopes=frozenset({Scope.ADMIN.value}),
    token_given=True,
)
CALLER = "eventms.caller"  # where the resolved caller is kept in the ASGI scope


def bearer_token(scope: AsgiScope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if kind.lower() == "bearer" and token.strip() else ""
    return None


@dataclass
class _Kept:
    until: float
    caller: Caller | None  # None: unknown or revoked


class KeyRing:
    """The keys this process has looked up recently, by token hash."""

    def __init__(
        self, engine: AsyncEngine, *, open_mode: bool, admin_token: str | None = None
    ) -> None:
        # One statement, no transaction around it.
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.open_mode = open_mode
        self._kept: dict[str, _Kept] = {}
        # ADMIN_API_KEY is checked here, from configuration, like any kept key but
        # for good: it is the way in when the database holds no key yet.
        self._admin_hash = token_hash(admin_token) if admin_token else None

    def known(self, scope: AsgiScope) -> Caller | None:
        """The caller, when it can be told without the database (else None)."""
        caller = self._known(scope)
        if caller is not None:
            scope[CALLER] = caller  # for the access log
        return caller

    def _known(self, scope: AsgiScope) -> Caller | None:
        if self.open_mode:
            return EVERYONE
        token = bearer_token(scope)
        if token is None:
            return ANONYMOUS
        digest = token_hash(token)
        if digest == self._admin_hash:
            return CONFIGURED_ADMIN
        kept = self._kept.get(digest)
        if kept is None or kept.until < time.monotonic():
            return None
        return kept.caller  # None for a token known to be invalid

    async def resolve(self, scope: AsgiScope) -> Caller | None:
        """The caller, or None for a token that is unknown or revoked."""
        found: Any = scope.get(CALLER)
        if isinstance(found, Caller):
            return found
        caller = await self._resolve(scope)
        if caller is not None:
            scope[CALLER] = caller
        return caller

    async def _resolve(self, scope: AsgiScope) -> Caller | None:
        if self.open_mode:
            return EVERYONE
        token = bearer_token(scope)
        if token is None:
            return ANONYMOUS
        return await self.resolve_digest(token_hash(token))

    async def resolve_digest(self, digest: str) -> Caller | None:
        """The key whose token hashes to `digest` (the organizer console keeps only
        the hash in its session cookie), or None for an unknown or revoked one."""
        if self.open_mode:
            return EVERYONE
        if digest == self._admin_hash:
            return CONFIGURED_ADMIN
        kept = self._kept.get(digest)
        if kept is None or kept.until < time.monotonic():
            kept = _Kept(time.monotonic() + KEY_CACHE_SECONDS, await self._load(digest))
            if len(self._kept) >= _KEPT_AT_MOST:
                self._kept.clear()
            self._kept[digest] = kept
        return kept.caller

    def forget(self) -> None:
        """Drop everything kept (after this process revoked a key)."""
        self._kept.clear()

    async def _load(self, digest: str) -> Caller | None:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT id, name, scopes FROM api_keys"
                        " WHERE token_hash = :digest AND revoked_at IS NULL"
                    ),
                    {"digest": digest},
                )
            ).first()
        if row is None:
            return None
        return Caller(
            key_id=row.id, key_name=row.name, scopes=frozenset(row.scopes), token_given=True
        )
