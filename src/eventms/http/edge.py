"""The first thing a request meets once through CORS: its rate limit, and, for a
by-id read whose body is cached, the answer. Both in one Redis round trip
(`TaggedCache.peek_counted`): a cached read costs that round trip and the bytes.

Rate limits count per API key for callers whose key this process knows, per address
for everyone else (anonymous callers, and tokens not checked yet: a made-up token
must not buy a budget of its own). Redis down: requests pass (fail open) and reads
go to PostgreSQL; each outage is logged once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventms.access.caller import Caller, KeyRing
from eventms.cache.client import REDIS_ERRORS
from eventms.cache.fast_path import FastPath, Lookup, answer
from eventms.http.errors import error_response
from eventms.http.ratelimit import (
    EXEMPT,
    RateLimiter,
    Window,
    client_of_caller,
    headers,
    too_many,
)
from eventms.observability.middleware import AHEAD


class Ahead(NamedTuple):
    """A request the front door counted (and looked up, and missed or refused) before
    passing it on: the edge counts it no second time; the request keeps its id and
    its clock."""

    window: Window | None
    counted: int | None
    request_id: str
    started: float


async def count_and_peek(
    limiter: RateLimiter | None,
    fast_path: FastPath,
    scope: Scope,
    caller: Caller | None,
    found: Lookup | None,
) -> tuple[Window | None, int | None, bytes | None]:
    """Count the request against its client's budget and, for a `found` by-id read,
    fetch its cached body: one Redis round trip. Redis down: no count (fail open), and
    no body (the route reads PostgreSQL)."""
    window: Window | None = None
    count: int | None = None
    body: bytes | None = None
    if limiter is not None and limiter.counting:
        window = limiter.window(client_of_caller(scope, limiter, caller))
        if found is not None:
            try:
                count, body = await fast_path.cache.engine.peek_counted(
                    found.key, found.kind, window.key, window.ttl
                )
                limiter.outage.recovered()
            except REDIS_ERRORS as error:
                limiter.failed(error)
        else:
            count = await limiter.hit(window)
    elif found is not None:
        body = await fast_path.lookup(found)
    return window, count, body


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter | None,
        keys: KeyRing,
        fast_path: FastPath,
        exempt: Iterable[str] = EXEMPT,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.keys = keys
        self.fast_path = fast_path
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or scope["path"].startswith(self.exempt)
        ):
            await self.app(scope, receive, send)
            return
        found: Lookup | None = None
        body: bytes | None = None
        ahead: Ahead | None = scope.pop(AHEAD, None)
        if ahead is not None:  # counted (and looked up) by the front door already
            window, count = ahead.window, ahead.counted
        else:
            caller = self.keys.known(scope)
            found = self.fast_path.match(scope, caller)
            window, count, body = await count_and_peek(
                self.limiter, self.fast_path, scope, caller, found
            )
        limiter = self.limiter

        extra = headers(window, count) if window is not None and count is not None else []
        if (
            limiter is not None
            and window is not None
            and count is not None
            and count > window.limit
        ):
            refusal = too_many(limiter, window)
            response = error_response(429, refusal.message, headers=refusal.headers)
            response.raw_headers.extend(extra)
            await response(scope, receive, send)
            return
        if found is not None and body is not None:
            await answer(scope, send, found, body, extra)
            return
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
