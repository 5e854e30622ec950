"""python-socketio's Redis manager, made to ride out a Redis restart quietly.

While Redis is down, python-socketio logs two errors per broadcast ("Cannot publish
to redis... retrying / giving up") and its listener backs off up to 60 s, so the
fan-out between instances could stay off for a minute after Redis is back. Here:

- a broadcast still reaches this instance's own clients (python-socketio delivers
  locally before it publishes); the publish to the other instances is skipped for
  `BACKOFF` seconds after a failure instead of being tried and logged each time;
- the listener resubscribes every `LISTEN_RETRY` seconds;
- each outage is logged once when it begins and once when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import socketio

from eventms.cache.client import BACKOFF
from eventms.outages import OutageLog

log = logging.getLogger("eventms.realtime")

LISTEN_RETRY = 1.0


class RedisManager(socketio.AsyncRedisManager):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.publishing = OutageLog(log, "Redis (Socket.IO fan-out)")
        self.listening = OutageLog(log, "Redis (Socket.IO fan-in)")
        self._down_until = 0.0
        self.connected: bool = False

    async def _publish(self, data: Any) -> Any:
        if time.monotonic() < self._down_until:
            self.publishing.count += 1
            return None
        try:
            if not self.connected:
                self._redis_connect()
            published = await self.redis.publish(self.channel, self.json.dumps(data))
        except Exception as error:
            self.connected = False
            self._down_until = time.monotonic() + BACKOFF
            self.publishing.failed(error, "broadcasts reach this instance's clients only")
            return None
        self.publishing.recovered()
        return published

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        while True:
            try:
                self._redis_connect()
                await self.pubsub.subscribe(self.channel)
                self.listening.recovered()
                async for message in self.pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.listening.failed(error, f"resubscribing every {LISTEN_RETRY:g} s")
                await asyncio.sleep(LISTEN_RETRY)
