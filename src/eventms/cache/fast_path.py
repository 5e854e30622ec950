"""By-id GETs whose body is cached, answered straight from Redis before FastAPI
routes the request: a hit costs one Redis call (the rate limit's count included, see
`http/edge.py`) and the bytes, not routing, dependency injection and a session. A
miss (or a cache that may not be read now) goes on to the route, which loads, fills
and guards against races as usual; the outer middleware (request ids, metrics, CORS)
applies to both.

Which paths qualify is read off the routers: a GET route marked `@by_id(kind)`.
The caller must be known without the database (see `access.caller`) and allowed by
the route's access rule; the view it may see is part of the key. Anything else goes
on to the route, which answers (401, 403, or the body) as usual.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.types import Scope as AsgiScope
from starlette.types import Send

from eventms.access.caller import Caller, KeyRing
from eventms.access.deps import PUBLIC, declared_access
from eventms.access.scopes import Scope
from eventms.cache.keys import BY_ID, FULL, Cache, by_id_key
from eventms.observability.middleware import ROUTE_TEMPLATE

_MARK = "__eventms_cached_view__"
_JSON_HEADERS = [(b"content-type", b"application/json")]

F = TypeVar("F", bound=Callable[..., Any])


def by_id(kind: str) -> Callable[[F], F]:
    """Mark a route as the by-id view `kind` (a key of `cache.keys.BY_ID`), whose one
    path parameter is the entity's id: its cached hits take the fast path."""
    if kind not in BY_ID:
        raise ValueError(f"unknown cached view {kind!r}")

    def mark(endpoint: F) -> F:
        setattr(endpoint, _MARK, kind)
        return endpoint

    return mark


def by_id_routes(routers: Iterable[APIRouter], prefix: str) -> list[tuple[str, str, str]]:
    """(path template, kind, access rule) of every marked GET route under `prefix`."""
    found = []
    for router in routers:
        for route in router.routes:
            kind = getattr(getattr(route, "endpoint", None), _MARK, None)
            if isinstance(route, APIRoute) and kind is not None and "GET" in (route.methods or ()):
                rule = declared_access(route.dependencies)
                if rule is None:
                    raise ValueError(f"{route.path}: a cached route declares its access")
                found.append((prefix + route.path, kind, rule))
    return found


# An id already written as `str(uuid.UUID(id))` would write it (most are).
_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_id(text: str) -> str | None:
    """The id in its canonical form (the cache key's), or None if it is no UUID."""
    if _CANONICAL.fullmatch(text):
        return text
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


class Lookup(NamedTuple):
    """A request the fast path may answer: its cache key and route (a tuple: made on
    every request)."""

    key: str
    kind: str
    template: str


class FastPath:
    """The by-id GET routes whose hits are answered before routing."""

    def __init__(self, routes: Iterable[tuple[str, str, str]], cache: Cache, keys: KeyRing) -> None:
        self.cache = cache
        self.keys = keys
        # By the path up to the id (`/api/v1/event/`): one dict lookup per request.
        self.routes: dict[str, tuple[str, str, str]] = {}
        for template, kind, rule in routes:
            head, _, last = template.rpartition("/")
            if not re.fullmatch(r"\{[^/{}]+\}", last) or "{" in head:
                raise ValueError(f"{template}: a by-id view has one path parameter, at the end")
            self.routes[head + "/"] = (template, kind, rule)

    def match(self, scope: AsgiScope, caller: Caller | None) -> Lookup | None:
        """The lookup for this request, if it may be answered from the cache now: a
        GET of a marked route, by a caller known without the database whom the
        route's rule allows, with a well-formed id, and a cache that may be read."""
        if scope["method"] != "GET" or caller is None or not self.cache.engine.readable:
            return None
        path: str = scope["path"]
        cut = path.rfind("/") + 1
        route = self.routes.get(path[:cut])
        if route is None:
            return None
        template, kind, rule = route
        if rule != PUBLIC and not caller.may(Scope(rule)):
            return None
        entity_id = canonical_id(path[cut:])
        if entity_id is None:
            return None
        view = caller.view if rule == PUBLIC else FULL
        return Lookup(by_id_key(kind, entity_id, view), kind, template)

    async def lookup(self, found: Lookup) -> bytes | None:
        """The cached body, or None (on a miss the route looks again, and counts it)."""
        body = await self.cache.engine.peek(found.key, found.kind, final=False)
        return body if isinstance(body, bytes) else None


async def answer(
    scope: AsgiScope, send: Send, found: Lookup, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """Send a cached body as the route would have."""
    scope[ROUTE_TEMPLATE] = found.template
    head = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": body})
