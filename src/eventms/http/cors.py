"""Starlette's CORS middleware, with a short way for requests that carry no `Origin`.

Starlette parses every request's headers and rewrites every response's through
`MutableHeaders`, only to add `Vary: Origin` when the request named no origin (every
server-to-server call, every call of the benchmark). Here such a request gets the same
answer headers by appending `vary: Origin` to the list; an answer that already has a
`Vary` goes through Starlette's own merge. Requests with an `Origin` are Starlette's.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

VARY_ORIGIN = (b"vary", b"Origin")


class CORS(CORSMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return
        starlette_send = self.send

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers") or []
                if any(name.lower() == b"vary" for name, _ in headers):
                    await starlette_send(message, send, Headers(scope=scope))
                    return
                message["headers"] = [*headers, VARY_ORIGIN]
            await send(message)

        await self.app(scope, receive, send_with_vary)
