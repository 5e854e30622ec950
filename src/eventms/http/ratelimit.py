"""Rate limiting: `RATE_LIMITER_MAX_TRY` requests per `RATE_LIMITER_TIME_TO_LEAVE` ms
per client, counted in Redis by the `limits` library, so that every instance behind a
load balancer draws on the same budget.

Windows are fixed and aligned to the clock (window n covers [n·w, (n+1)·w)), so the
reset time is known without asking Redis: one round trip per request (limits'
atomic INCR + EXPIRE), and the X-RateLimit-* headers come with every answer.

Pure ASGI middleware (no BaseHTTPMiddleware): it adds no task and no body copying.
If Redis is down the request is let through (fail open), and that is logged once
per outage, not per request.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventms.access.caller import KeyRing
from eventms.cache.client import REDIS_ERRORS, Outage
from eventms.config import Settings
from eventms.http.errors import error_response

log = logging.getLogger("eventms.ratelimit")

EXEMPT = ("/health", "/ready", "/metrics", "/api-docs", "/openapi.json")


def trusted_networks(settings: Settings) -> list[IPv4Network | IPv6Network]:
    return [ip_network(p, strict=False) for p in settings.trusted_proxies]


class RateLimiter:
    """Counts requests per client and window in Redis."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        url = settings.redis_location() or "redis://localhost"
        scheme = "async+redis+unix" if url.startswith("unix") else "async+redis"
        # limits gets our client's pool: same short timeouts, no second set of sockets.
        self.storage = RedisStorage(
            scheme + "://" + url.split("://", 1)[1],
            implementation="redispy",
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        )
        self.window_ms = settings.rate_limiter_time_to_leave
        self.item = RateLimitItemPerSecond(
            settings.rate_limiter_max_try, max(1, math.ceil(self.window_ms / 1000))
        )
        self.trusted = trusted_networks(settings)
        self.outage = Outage(
            log,
            lost="rate limiting off while Redis is unavailable: %s",
            back="Redis is back: rate limiting on again",
        )

    async def hit(self, client: str) -> tuple[int, int, float] | None:
        """(limit, requests counted in this window, window end as epoch seconds), or
        None when Redis could not be asked."""
        now_ms = time.time() * 1000
        window = int(now_ms // self.window_ms)
        if self.outage.backing_off:
            return None
        key = self.item.key_for(client, str(window))
        try:
            count = await self.storage.incr(key, self.item.get_expiry())
        except REDIS_ERRORS as error:
            self.outage.failed(repr(error))
            return None
        self.outage.recovered()
        return self.item.amount, count, (window + 1) * self.window_ms / 1000

    def client_of(self, scope: Scope) -> str:
        return client_address(scope, self.trusted)


def client_address(scope: Scope, trusted: list[IPv4Network | IPv6Network]) -> str:
    """The socket peer; a trusted proxy's X-Forwarded-For names the real client."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not trusted or not _is_trusted(peer, trusted):
        return str(peer)
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            # The right-most address not added by one of our proxies.
            hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
            for hop in reversed(hops):
                if not _is_trusted(hop, trusted):
                    return hop
            return hops[0] if hops else str(peer)
    return str(peer)


def _is_trusted(address: str, trusted: list[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _headers(limit: int, count: int, reset: float) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(limit).encode()),
        (b"x-ratelimit-remaining", str(max(0, limit - count)).encode()),
        (b"x-ratelimit-reset", str(math.ceil(reset)).encode()),
    ]


class RateLimitMiddleware:
    """Counts per API key for callers whose key this process knows, per address for
    everyone else (anonymous callers, and tokens not checked yet: a made-up token
    must not buy a budget of its own)."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter | None,
        keys: KeyRing,
        exempt: Iterable[str] = EXEMPT,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.keys = keys
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.limiter
        if (
            scope["type"] != "http"
            or limiter is None
            or scope["path"].startswith(self.exempt)
            or scope["method"] == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        caller = self.keys.known(scope)
        client = f"key:{caller.key_id}" if caller and caller.key_id else limiter.client_of(scope)
        counted = await limiter.hit(client)
        if counted is None:
            await self.app(scope, receive, send)
            return
        limit, count, reset = counted
        headers = _headers(limit, count, reset)
        if count > limit:
            retry_after = str(max(1, math.ceil(reset - time.time())))
            response = error_response(
                429,
                f"Too many requests: at most {limit} per "
                f"{limiter.window_ms / 1000:g} s; retry in {retry_after} s",
                headers={"Retry-After": retry_after},
            )
            response.raw_headers.extend(headers)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
