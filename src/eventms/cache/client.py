"""The Redis client of a process, and the outage bookkeeping its users share.

Short timeouts and no retries: when Redis is slow a request goes on without it (the
cache reads PostgreSQL, the rate limiter lets the request through) instead of
waiting. After a failure Redis is left alone for `BACKOFF` seconds, and an outage is
logged once when it starts and once when it ends, not once per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from eventms.cache.multiplex import Multiplexed, ScriptHost
from eventms.config import Settings

BACKOFF = 1.0  # seconds without trying Redis after a failure
REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


def connect_redis(settings: Settings) -> Redis | None:
    """One client (and connection pool) per process, or None without Redis.

    No retries but one: a pooled connection found closed (Redis restarted) is replaced
    at once, once, rather than failing the call; otherwise every stale connection of
    the pool would start an outage of its own.
    """
    url = settings.redis_location()
    if url is None:
        return None
    return Redis.from_url(
        url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        max_connections=256,
    )


def connect_scripts(settings: Settings, redis: Redis | None) -> ScriptHost | None:
    """What runs the process's Lua scripts (the hot path's one round trip): one
    multiplexed connection (`cache.multiplex`), or redis-py's `redis` for a URL that
    connection does not speak (TLS)."""
    url = settings.redis_location()
    if url is None or redis is None:
        return None
    if Multiplexed.supports(url):
        return Multiplexed(url, settings.redis_timeout)
    return cast(ScriptHost, redis)


class Outage:
    """One component's view of Redis: failing (and for how long to leave it alone),
    or fine. `failed` and `recovered` log the transitions only."""

    def __init__(self, log: logging.Logger, *, lost: str, back: str) -> None:
        self.log = log
        self.lost = lost  # its "%s" receives what failed
        self.back = back
        self.ongoing = False
        self._quiet_until = 0.0

    @property
    def backing_off(self) -> bool:
        """Whether Redis failed less than BACKOFF seconds ago."""
        return time.monotonic() < self._quiet_until

    def failed(self, what: object) -> None:
        if not self.ongoing:
            self.log.warning(self.lost, what)
            self.ongoing = True
        self._quiet_until = time.monotonic() + BACKOFF

    def recovered(self) -> None:
        if self.ongoing:
            self.log.warning(self.back)
            self.ongoing = False
        self._quiet_until = 0.0
