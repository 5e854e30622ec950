"""The session an idempotent write runs in, handed from the Idempotency-Key layer
(which opened its transaction and commits it) to the request's session dependency
through the ASGI scope."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Scope

_HELD = "eventms.idempotency.session"


def hold(scope: Scope, session: AsyncSession) -> None:
    scope[_HELD] = session


def held_session(scope: Scope) -> AsyncSession | None:
    """The session whose transaction the Idempotency-Key layer owns, if any."""
    session = scope.get(_HELD)
    return session if isinstance(session, AsyncSession) else None
