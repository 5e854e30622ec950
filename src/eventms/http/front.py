"""The front door: a cached by-id read answered before the app's layers run.

A cached `GET /event/{id}` went through Socket.IO's dispatch, FastAPI's and
Starlette's entry, their error layer, the request id and access line, CORS, the body
limit and the edge, each an awaited call and most a wrapped `send`, to send bytes
that one Redis round trip had found: those layers were a third of its CPU. Here the
same answer is made in one place, with the same headers in the same order, the same
metrics and the same access line, for the requests whose answer those layers would
not change:

- a GET of a by-id view that the fast path may answer (see `cache.fast_path`), not
  on an exempt path;
- without `Origin` (CORS then only adds `Vary: Origin`; a browser's request goes the
  long way), without a body (`Content-Length`, `Transfer-Encoding`: the body limit's
  business);
- found in the cache, within the client's rate limit.

Anything else is passed on with what was done here (`edge.Ahead`: the window and the
count, the request id, the clock): the edge does not count it twice, and the access
line times it from here. tests/test_front_door.py holds both ways to the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter

from starlette.types import ASGIApp, Receive, Scope, Send

from eventms.access.caller import KeyRing
from eventms.cache.fast_path import FastPath
from eventms.http.activity import ACTIVITY
from eventms.http.cors import VARY_ORIGIN
from eventms.http.edge import AHEAD, Ahead, count_and_peek
from eventms.http.ratelimit import EXEMPT, RateLimiter, headers
from eventms.observability.logging import request_id
from eventms.observability.middleware import (
    HEADER,
    account,
    new_request_id,
    sane_request_id,
)

# Request headers that send a request the long way (see above).
_ELSEWHERE = frozenset((b"origin", b"content-length", b"transfer-encoding"))
_JSON = (b"content-type", b"application/json")


class FrontDoor:
    def __init__(
        self,
        limiter: RateLimiter | None,
        keys: KeyRing,
        fast_path: FastPath,
        exempt: Iterable[str] = EXEMPT,
    ) -> None:
        self.limiter = limiter
        self.keys = keys
        self.fast_path = fast_path
        self.exempt = tuple(exempt)

    async def serve(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        """Answer here or through `app`, counting the request in `ACTIVITY`."""
        if not ACTIVITY.counts(scope):
            await app(scope, receive, send)
            return
        ACTIVITY.in_flight += 1
        try:
            if not await self.answered(scope, send):
                await app(scope, receive, send)
        finally:
            ACTIVITY.in_flight -= 1

    async def answered(self, scope: Scope, send: Send) -> bool:
        """Answer the request if it is a cached read this door may answer; else
        leave what was done in the scope and return False (the app answers)."""
        if scope["type"] != "http" or scope["method"] != "GET":
            return False
        incoming = None
        for name, value in scope["headers"]:
            if name in _ELSEWHERE:
                return False
            if name == HEADER:
                incoming = value
        if scope["path"].startswith(self.exempt):
            return False
        caller = self.keys.known(scope)
        found = self.fast_path.match(scope, caller)
        if found is None:
            return False
        started = perf_counter()
        rid = sane_request_id(incoming) or new_request_id()
        token = request_id.set(rid)
        try:
            window, count, body = await count_and_peek(
                self.limiter, self.fast_path, scope, caller, found
            )
            if body is None or (window is not None and count is not None and count > window.limit):
                scope[AHEAD] = Ahead(window, count, rid, started)
                return False
            head = [_JSON, (b"content-length", str(len(body)).encode())]
            if window is not None and count is not None:
                head += headers(window, count)
            head += (VARY_ORIGIN, (HEADER, rid.encode()))
            try:
                await send({"type": "http.response.start", "status": 200, "headers": head})
                await send({"type": "http.response.body", "body": body})
            finally:
                account(scope, found.template, 200, started, rid)
            return True
        finally:
            request_id.reset(token)
