"""The Idempotency-Key layer (IETF httpapi draft semantics), as pure ASGI middleware.

For a POST, PATCH or DELETE under the API prefix that carries `Idempotency-Key`, it
owns the request's transaction:

1. open the session and take `pg_try_advisory_xact_lock(hash(scope, key))`: held
   by another transaction means the first request with this key is still in
   flight (on any instance): 409 with Retry-After;
2. a stored, unexpired answer for (scope, key): replay it if the fingerprint
   (method, path, body) matches (`Idempotent-Replayed: true`, the route never
   runs), else 422;
3. otherwise run the request in that transaction (the session dependency finds it
   through `held` and runs the route in a savepoint, so a 4xx rolls back the write
   but not the lock), buffer the answer, store it in the same transaction, commit,
   run the after-commit effects, and only then send the answer.

So a process killed before the commit leaves neither the write nor the key; one
killed after it leaves both, and the retry gets the replay. 5xx and 429 answers are
not stored (the write is rolled back) and the key stays free.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventms.access.caller import KeyRing
from eventms.config import Settings
from eventms.db.effects import discard_after_commit, run_after_commit
from eventms.http.errors import AllowedMethods, error_response
from eventms.http.ratelimit import client_address, trusted_networks
from eventms.idempotency import store
from eventms.idempotency.held import hold

log = logging.getLogger("eventms.idempotency")

HEADER = "Idempotency-Key"
WRITES = frozenset({"POST", "PATCH", "DELETE"})
# Printable ASCII (space to tilde), 1 to 255 characters.
VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")
INVALID = "Idempotency-Key must be 1 to 255 printable ASCII characters"
IN_FLIGHT = "A request with this Idempotency-Key is still being processed"
REUSED = "Idempotency-Key reused with a different request"
RETRY_AFTER_SECONDS = 1
# Headers of an answer that belong to that one response, not to the stored answer.
_NOT_STORED = frozenset({b"content-length", b"date", b"server", b"x-request-id"})


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(f"{method} {path}?".encode())
    digest.update(query)
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


class _Captured:
    """The app's answer, held back until the transaction that made it has committed."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))

    def stored_headers(self) -> list[tuple[str, str]]:
        return [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in self.headers
            if name.lower() not in _NOT_STORED
        ]

    async def forward(self, send: Send) -> None:
        await _answer(send, self.status, bytes(self.body), self.headers)


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    kept = [(n, v) for n, v in headers if n.lower() != b"content-length"]
    kept.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": kept})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, status: int, message: str, **headers: str) -> None:
    response = error_response(status, message, headers=headers or None)
    await _answer(send, status, bytes(response.body), list(response.raw_headers))


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client went away before sending its body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then waits on the client."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, prefix: str, keys: KeyRing, settings: Settings) -> None:
        self.app = app
        self.prefix = prefix
        self.keys = keys
        self.ttl = timedelta(hours=settings.idempotency_ttl_hours)
        self.trusted = trusted_networks(settings)
        self.pause = settings.idempotency_test_pause if settings.app_env == "test" else None
        self.pause_seconds = settings.idempotency_test_pause_seconds
        self._routes: AllowedMethods | None = None

    def _declared(self, scope: Scope) -> bool:
        """Whether the method and path name an operation: an undeclared one (a 405,
        a 404) is answered by the router as it is, whatever key it carries."""
        if self._routes is None:
            self._routes = AllowedMethods(scope["app"])
        allowed = self._routes.of(scope["path"])
        return allowed is not None and scope["method"] in allowed.split(", ")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in WRITES
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        given = [v for n, v in scope["headers"] if n == b"idempotency-key"]
        if not given or not self._declared(scope):
            await self.app(scope, receive, send)
            return
        key = given[0].decode("latin-1").strip()
        if len(given) > 1 or not VALID_KEY.fullmatch(key):
            await _refuse(send, 400, INVALID)
            return
        caller = await self.keys.resolve(scope)
        if caller is None:  # an unknown token: the route answers its 401, unstored
            await self.app(scope, receive, send)
            return
        owner = f"key:{caller.key_id}" if caller.key_id else f"addr:{self._client(scope)}"
        try:
            body = await _read_body(receive)
        except ConnectionAbortedError:
            return
        print_ = fingerprint(scope["method"], scope["path"], scope.get("query_string", b""), body)
        sessions: async_sessionmaker[AsyncSession] = scope["state"]["sessions"]
        async with sessions() as session:
            await self._run(session, scope, _replaying(body, receive), send, owner, key, print_)

    def _client(self, scope: Scope) -> str:
        return client_address(scope, self.trusted)

    async def _run(
        self,
        session: AsyncSession,
        scope: Scope,
        receive: Receive,
        send: Send,
        owner: str,
        key: str,
        print_: str,
    ) -> None:
        captured = _Captured()
        try:
            if not await store.try_lock(session, owner, key):
                await session.rollback()
                await _refuse(send, 409, IN_FLIGHT, **{"Retry-After": str(RETRY_AFTER_SECONDS)})
                return
            stored = await store.find(session, owner, key)
            if stored is not None:
                await session.rollback()
                if stored.fingerprint != print_:
                    await _refuse(send, 422, REUSED)
                    return
                headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in stored.headers]
                headers.append((b"idempotent-replayed", b"true"))
                await _answer(send, stored.status, stored.body, headers)
                return
            hold(scope, session)
            await self.app(scope, receive, captured.send)
            if captured.status >= 500 or captured.status == 429:
                await session.rollback()
                discard_after_commit(session)
                await captured.forward(send)
                return
            await store.save(
                session,
                scope=owner,
                key=key,
                fingerprint=print_,
                status=captured.status,
                body=bytes(captured.body),
                headers=captured.stored_headers(),
                ttl=self.ttl,
            )
            await self._test_pause("before-commit")
            await session.commit()
            await self._test_pause("after-commit")
        except BaseException:
            await session.rollback()
            discard_after_commit(session)
            raise
        await run_after_commit(session)
        await captured.forward(send)

    async def _test_pause(self, where: Any) -> None:
        if self.pause == where:
            log.warning("APP_ENV=test: pausing %s s %s", self.pause_seconds, where)
            await asyncio.sleep(self.pause_seconds)
