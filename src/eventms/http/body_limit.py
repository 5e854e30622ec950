"""Bounded request bodies: more than MAX_BODY_BYTES is refused with 413 before it
is read whole, so that a few dozen connections sending huge JSON cannot exhaust
memory.

A declared `Content-Length` over the limit is refused before a byte of the body is
read; a body without one (chunked) is counted as it arrives and refused as soon as
it passes the limit, whatever the app was doing with it (its answer to the cut-off
read is dropped). The 413 says `Connection: close`: the rest of the body is not read.

Pure ASGI middleware, inside CORS so that a browser sees the 413.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventms.http.errors import error_response


class BodyTooLarge(HTTPException):
    """Raised into the app's read of the body; an HTTPException, so that no layer
    takes it for a bug (the middleware answers 413 itself)."""

    def __init__(self) -> None:
        super().__init__(413)


def _declared_length(scope: Scope) -> int | None:
    """The body's declared length; 0 when the request has no body (HTTP/1.1: neither
    Content-Length nor Transfer-Encoding); None when it is sent chunked."""
    length: int | None = 0
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we run
        if name == b"transfer-encoding":
            length = None
    return length


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        if declared == 0:  # no body to count (most reads): nothing to wrap
            await self.app(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a read we cut off
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            f"Request body too large: at most {self.max_bytes} bytes",
            "Payload Too Large",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
