"""The request's id, its access-log line and its metrics, as pure ASGI middleware.

Pure ASGI rather than `BaseHTTPMiddleware`: this runs on every request, and it
only needs to wrap `send` to see the status and add one header.
"""

from __future__ import annotations

import os
import re
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventms.access.caller import CALLER
from eventms.observability import metrics
from eventms.observability.access import log_access
from eventms.observability.logging import request_id

HEADER = b"x-request-id"
# An incoming id is kept only if it cannot forge log lines or blow up label sizes.
SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def sane_request_id(value: bytes | None) -> str | None:
    """An incoming `X-Request-ID` value, if it may be kept (see SANE_ID)."""
    return value.decode("ascii") if value is not None and SANE_ID.fullmatch(value) else None


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return sane_request_id(value)
    return None


# Set by a layer that answers before FastAPI routes the request (cache.py's fast path).
ROUTE_TEMPLATE = "eventms.route_template"


def route_template(scope: Scope) -> str:
    """`/api/v1/event/{event_id}`, not the id itself: one series per route, bounded.

    FastAPI leaves the matched route in the scope, but (since routers are included
    lazily) its path may lack the include prefix (`/api/v1`); that prefix is the part
    of the request path before what the route itself matched.
    """
    answered_early = scope.get(ROUTE_TEMPLATE)
    if answered_early is not None:
        return str(answered_early)
    route: Any = scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        return "unmatched"
    try:
        matched = template.format(**scope.get("path_params", {}))
    except (KeyError, IndexError, ValueError):
        return template
    path: str = scope["path"]
    return path[: len(path) - len(matched)] + template if path.endswith(matched) else template


class _RequestIds:
    """128 random bits per id, as uuid4's hex, from `os.urandom` 256 ids at a time:
    one getrandom() call per 256 requests, not one each."""

    BATCH = 256

    def __init__(self) -> None:
        self._hex = ""
        self._next = 0
        os.register_at_fork(after_in_child=self._drop)  # a child draws its own

    def _drop(self) -> None:
        self._hex = ""

    def __call__(self) -> str:
        start = self._next
        if start >= len(self._hex):
            self._hex, start = os.urandom(16 * self.BATCH).hex(), 0
        self._next = start + 32
        return self._hex[start : start + 32]


new_request_id = _RequestIds()


def account(scope: Scope, route: str, status: int, started: float, rid: str) -> None:
    """The request's metrics and access line, once it is answered (or has failed)."""
    elapsed = perf_counter() - started
    method = scope["method"]
    metrics.observe_request(method, route, status, elapsed)
    client = scope.get("client")
    # The path only: a query string may hold search terms such as an email.
    log_access(
        rid,
        method,
        scope["path"],
        status,
        elapsed,
        f"{client[0]}:{client[1]}" if client else "-",
        getattr(scope.get(CALLER), "key_name", None),
    )


# A request the front door (`http.front`) passed on keeps the id and clock it had
# there: see `http.edge.Ahead`.
AHEAD = "eventms.edge.ahead"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ahead = scope.get(AHEAD)
        if ahead is not None:
            rid, started = ahead.request_id, ahead.started
        else:
            rid, started = incoming_request_id(scope) or new_request_id(), perf_counter()
        token = request_id.set(rid)
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            account(scope, route_template(scope), status, started, rid)
            request_id.reset(token)
