"""What routes declare about access, and the caller they receive.

Every API route declares one access rule in its `dependencies`: `requires(scope)`
or `public` (anonymous callers allowed; what they see may still depend on who they
are, see `Caller.view`). `declared_access` reads the rule back, so that the app
refuses to start with a route that declares none, and the tests build their
route x caller matrix from the routes themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam

from eventms.access.caller import Caller
from eventms.access.scopes import Scope
from eventms.api.deps import state_of
from eventms.errors import Forbidden, Unauthenticated

AUTHENTICATION_REQUIRED = "Authentication required"
INVALID_KEY = "Invalid or revoked API key"
PUBLIC = "public"
_RULE = "__eventms_access__"


async def _caller(request: Request) -> Caller:
    caller = await state_of(request.scope)["keys"].resolve(request.scope)
    if caller is None:
        raise Unauthenticated(INVALID_KEY)
    return caller


CallerDep = Annotated[Caller, Depends(_caller)]


def access_rule(name: str | Scope, check: Callable[..., Awaitable[Any]]) -> DependsParam:
    """`check` as a route dependency that declares the access rule `name` (for
    callers resolved another way than the Authorization header: the web console)."""
    setattr(check, _RULE, name)
    return Depends(check)


_rule = access_rule


def requires(scope: Scope) -> DependsParam:
    """Only a key with `scope` (or `admin`), or anyone in `AUTH_MODE=open`."""

    async def check(caller: CallerDep) -> None:
        if caller.may(scope):
            return
        if not caller.token_given:
            raise Unauthenticated(AUTHENTICATION_REQUIRED)
        raise Forbidden(f"This key lacks the scope {scope}")

    return _rule(scope, check)


async def _public(caller: CallerDep) -> None:
    """Anyone; a token, when presented, must still be valid."""


public = _rule(PUBLIC, _public)


def declared_access(dependencies: list[Any]) -> str | None:
    """The access rule (a scope, or `public`) among a route's dependencies."""
    for dependency in dependencies:
        rule = getattr(getattr(dependency, "dependency", None), _RULE, None)
        if rule is not None:
            return str(rule)
    return None
