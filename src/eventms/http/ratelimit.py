"""Rate limiting: `RATE_LIMITER_MAX_TRY` requests per `RATE_LIMITER_TIME_TO_LEAVE` ms
per client, counted in Redis, so that every instance behind a load balancer draws on
the same budget.

Windows are fixed and aligned to the clock (window n covers [n·w, (n+1)·w)), so the
reset time is known without asking Redis, and a count is one `INCR` (plus `EXPIRE`
for a new window) in one script. That script is small enough to ride along with the
cache lookup of a by-id read (`cache.engine.TaggedCache.peek_counted`): a cached read
costs one Redis round trip, rate limit included (see `http/edge.py`).

If Redis is down the request is let through (fail open), and that is logged once
per outage, not per request.
"""

from __future__ import annotations

import logging
import math
import time
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import NamedTuple

from starlette.types import Scope

from eventms.access.caller import Caller, KeyRing
from eventms.cache.client import REDIS_ERRORS, Outage
from eventms.cache.multiplex import ScriptHost
from eventms.config import Settings
from eventms.errors import TooManyRequests

log = logging.getLogger("eventms.ratelimit")

EXEMPT = ("/health", "/ready", "/metrics", "/api-docs", "/openapi.json")

# KEYS: the window's counter. ARGV: its ttl (s). Returns the count so far.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class Window(NamedTuple):
    """One client's current rate-limit window (a tuple: made on every request)."""

    key: str  # its counter in Redis
    ttl: int  # seconds the counter lives (the window, rounded up)
    limit: int
    reset: float  # the window's end, epoch seconds


def trusted_networks(settings: Settings) -> list[IPv4Network | IPv6Network]:
    return [ip_network(p, strict=False) for p in settings.trusted_proxies]


class RateLimiter:
    """Counts requests per client and window in Redis.

    By default the budget of every request (RATE_LIMITER_*); a `name`d limiter with
    its own `limit` and `window_ms` counts apart (e.g. signups, SIGNUP_RATE_LIMIT_*).
    """

    def __init__(
        self,
        redis: ScriptHost,
        settings: Settings,
        *,
        limit: int | None = None,
        window_ms: int | None = None,
        name: str = "requests",
    ) -> None:
        self.limit = limit or settings.rate_limiter_max_try
        self.window_ms = window_ms or settings.rate_limiter_time_to_leave
        self.prefix = f"ems:rl:{name}:"
        self._count = redis.register_script(_COUNT)
        self.trusted = trusted_networks(settings)
        self.outage = Outage(
            log,
            lost="rate limiting off while Redis is unavailable: %s",
            back="Redis is back: rate limiting on again",
        )

    def window(self, client: str) -> Window:
        number = int(time.time() * 1000 // self.window_ms)
        return Window(
            key=f"{self.prefix}{client}:{number}",
            ttl=max(1, math.ceil(self.window_ms / 1000)),
            limit=self.limit,
            reset=(number + 1) * self.window_ms / 1000,
        )

    @property
    def counting(self) -> bool:
        """Whether Redis may be asked now (it did not fail a moment ago)."""
        return not self.outage.backing_off

    async def hit(self, window: Window) -> int | None:
        """The requests counted in `window` with this one, or None when Redis could
        not be asked."""
        if self.outage.backing_off:
            return None
        try:
            count = int(await self._count(keys=[window.key], args=[window.ttl]))
        except REDIS_ERRORS as error:
            self.failed(error)
            return None
        self.outage.recovered()
        return count

    def failed(self, error: BaseException) -> None:
        self.outage.failed(repr(error))

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


def client_of(scope: Scope, limiter: RateLimiter, keys: KeyRing) -> str:
    """Whom a request counts against: its API key when this process knows it, else its
    address (anonymous callers, and tokens not checked yet: a made-up token must not
    buy a budget of its own)."""
    return client_of_caller(scope, limiter, keys.known(scope))


def client_of_caller(scope: Scope, limiter: RateLimiter, caller: Caller | None) -> str:
    """`client_of` for a caller already told by `KeyRing.known` (the edge has it)."""
    return f"key:{caller.key_id}" if caller and caller.key_id else limiter.client_of(scope)


def too_many(limiter: RateLimiter, window: Window) -> TooManyRequests:
    wait = retry_after(window)
    return TooManyRequests(
        f"Too many requests: at most {window.limit} per "
        f"{limiter.window_ms / 1000:g} s; retry in {wait} s",
        retry_after=wait,
    )


async def spend(limiter: RateLimiter | None, client: str) -> None:
    """Count one request of `client` against `limiter`'s budget; raise TooManyRequests
    past it. For budgets of single routes (signups); fails open like the edge."""
    if limiter is None:
        return
    window = limiter.window(client)
    count = await limiter.hit(window)
    if count is not None and count > window.limit:
        raise too_many(limiter, window)


def headers(window: Window, count: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(window.limit).encode()),
        (b"x-ratelimit-remaining", str(max(0, window.limit - count)).encode()),
        (b"x-ratelimit-reset", str(math.ceil(window.reset)).encode()),
    ]


def retry_after(window: Window) -> str:
    return str(max(1, math.ceil(window.reset - time.time())))
