"""A Redis cache of response bodies that never serves a value older than the last
acknowledged write. It knows no key names: `eventms.cache.keys` gives it keys and tags.

How staleness is ruled out
--------------------------
Every cached value depends on *tags* (one per entity it shows, one per list family,
and one for everything). A write, after its transaction commits and before it is
acknowledged, *bumps* the tags of what it changed: it sets them to the next value of
a global clock (`INCR`). A body is stored with the tag versions it was built under
(under its key, `tag=version ...`; the body under the key and `BODY`) and a hit is
served only if every tag still has that version; a bumped tag makes every value
built on it unreadable at once, with no key scan. The check runs in Redis (one
`EVALSHA`, with the body's `GET` in the same round trip).

The reader/writer race ("the reader loads the old row, the writer commits and
bumps, the reader then stores the old row") is closed by a generation check before
the store: a miss returns the clock, the reader loads from PostgreSQL, and the fill
script refuses to store if any tag was bumped after that clock reading. A writer's
bump that comes before the clock reading follows its commit, so the load (which
starts after the reading) sees the write. Tags live TTL + `FILL_WINDOW` seconds and
a fill older than `FILL_WINDOW` is dropped, so a bump cannot expire unnoticed; a
missing tag makes a value unreadable rather than fresh.

Redis down or slow (short socket timeouts): reads go to PostgreSQL and nothing is
filled for `BACKOFF` seconds. A bump that fails is remembered; the process then
serves no cached read until it has replayed it together with a bump of the
everything-tag (which also covers writes other processes could not report), and
keeps retrying in the background. A process that merely saw Redis fail bumps the
everything-tag on recovery too, for the same reason.

Concurrent misses on one key in a process share one load (single flight), but only
among requests that read the same clock: a request that arrives after some write was
acknowledged must not reuse a load that may have started before it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from eventms.cache.client import BACKOFF, REDIS_ERRORS, Outage
from eventms.cache.multiplex import MultiplexedScript, ScriptHost
from eventms.observability import metrics

log = logging.getLogger("eventms.cache")

FILL_WINDOW = 60  # seconds: a load slower than this is not stored
BODY = "#body"  # a value's body is under its key and this

# The clock starts from Redis's own time in microseconds, so that it keeps growing
# across a restart of an empty Redis (a snapshot taken before the restart is never
# mistaken for a later one).
_CLOCK = """
local function clock(key)
  local now = redis.call('GET', key)
  if not now then
    local t = redis.call('TIME')
    now = string.format('%d', t[1] * 1000000 + t[2])
    redis.call('SET', key, now)
  end
  return now
end
"""

# KEYS: value, clock, body[, counter]. ARGV: [counter ttl]. With a counter (a
# rate-limit window, see http/ratelimit.py) the request is counted in the same round
# trip. The value is the tag versions its body was built under (`tag=version ...`);
# the body is under a key of its own, read by a plain GET sent with the script (see
# `_look`): passed through Lua, a body of a few KB cost Redis more than all the rest.
# Returns {count or -1, 1} when the body is fresh, {count or -1, 0, clock} on a miss.
_LOOKUP = (
    _CLOCK
    + """
local count = -1
if KEYS[4] then
  count = redis.call('INCR', KEYS[4])
  if count == 1 then redis.call('EXPIRE', KEYS[4], ARGV[1]) end
end
local value = redis.call('GET', KEYS[1])
if value and redis.call('EXISTS', KEYS[3]) == 1 then
  local names, wanted = {}, {}
  for name, version in string.gmatch(value, '(%S+)=(%d+)') do
    names[#names + 1] = name
    wanted[#wanted + 1] = version
  end
  local fresh = #names > 0
  if fresh then
    local current = redis.call('MGET', unpack(names))
    for i = 1, #names do
      if current[i] ~= wanted[i] then fresh = false break end
    end
  end
  if fresh then return {count, 1} end
end
return {count, 0, clock(KEYS[2])}
"""
)

# KEYS: value, clock, body. ARGV: snapshot, value ttl, tag ttl, body, tags...
_FILL = (
    _CLOCK
    + """
local snapshot = tonumber(ARGV[1])
local header = {}
for i = 5, #ARGV do
  local version = redis.call('GET', ARGV[i])
  if version and tonumber(version) > snapshot then return 0 end
  if not version then
    version = clock(KEYS[2])
    redis.call('SET', ARGV[i], version, 'EX', ARGV[3])
  end
  header[#header + 1] = ARGV[i] .. '=' .. version
end
redis.call('SET', KEYS[1], table.concat(header, ' '), 'EX', ARGV[2])
redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[2])
return 1
"""
)

# KEYS: clock. ARGV: tag ttl, tags...
_BUMP = (
    _CLOCK
    + """
clock(KEYS[1])
local now = redis.call('INCR', KEYS[1])
for i = 2, #ARGV do redis.call('SET', ARGV[i], now, 'EX', ARGV[1]) end
return now
"""
)


@dataclass
class Stats:
    lookups: int = 0
    hits: int = 0
    misses: int = 0
    joined: int = 0  # misses served by another request's load
    bypassed: int = 0  # reads sent to PostgreSQL because Redis was down or suspect


class _Abandoned(Exception):
    """The request leading a load went away; a follower loads for itself."""


@dataclass
class _Flight:
    snapshot: int
    result: asyncio.Future[bytes]


@dataclass
class Rendered:
    """A response body and the tags of everything it shows."""

    body: bytes
    tags: Iterable[str] = ()


Render = Callable[[], Awaitable[Rendered]]


@dataclass
class TaggedCache:
    redis: ScriptHost | None  # what runs the scripts (see cache.client.connect_scripts)
    ttl: int
    clock_key: str
    everything_tag: str
    stats: Stats = field(default_factory=Stats)
    outage: Outage = field(
        default_factory=lambda: Outage(
            log,
            lost="Redis unavailable (%s): serving from PostgreSQL",
            back="Redis is back: pending invalidations replayed, cache resumed",
        )
    )
    _pending: set[str] = field(default_factory=set)
    _flights: dict[str, _Flight] = field(default_factory=dict)
    _retrier: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        if self.redis is not None:
            self._lookup = self.redis.register_script(_LOOKUP)
            self._fill = self.redis.register_script(_FILL)
            self._bump = self.redis.register_script(_BUMP)

    @property
    def enabled(self) -> bool:
        return self.redis is not None and self.ttl > 0

    @property
    def tag_ttl(self) -> int:
        return self.ttl + FILL_WINDOW

    @property
    def readable(self) -> bool:
        """Whether a lookup may be tried now without awaiting anything (no back-off,
        nothing owed to Redis)."""
        return self.enabled and not self.outage.backing_off and not self._pending

    async def peek(self, key: str, kind: str, *, final: bool = True) -> bytes | int | None:
        """The body cached under `key`; on a miss, the clock snapshot a fill must be
        checked against; None when cached reads may not be served now. A look that is
        not `final` (another follows on a miss) counts only if it hits."""
        if not self.enabled or not await self._ready():
            return None
        try:
            found, body = await self._look(key)
        except REDIS_ERRORS as error:
            self._failed("lookup", error)
            return None
        return self._found(found, body, kind, final)

    async def peek_counted(
        self, key: str, kind: str, counter: str, counter_ttl: int
    ) -> tuple[int, bytes | None]:
        """Count a request in the rate-limit window `counter` and look `key` up, in one
        round trip: (the window's count, the cached body or None). Only when
        `readable`; raises Redis's errors (after noting the outage) for the caller
        to fail open."""
        try:
            found, body = await self._look(key, counter, counter_ttl)
        except REDIS_ERRORS as error:
            self._failed("lookup", error)
            raise
        fresh = self._found(found, body, kind, final=False)
        return int(found[0]), fresh if isinstance(fresh, bytes) else None

    async def _look(
        self, key: str, counter: str | None = None, counter_ttl: int = 0
    ) -> tuple[list[int], bytes | None]:
        """The lookup script's reply, and the body (when there is one): in one round
        trip on the multiplexed connection; with redis-py (TLS), the body in a second
        one, on a hit."""
        keys = [key, self.clock_key, key + BODY]
        args: list[int] = []
        if counter is not None:
            keys.append(counter)
            args.append(counter_ttl)
        lookup = self._lookup
        if isinstance(lookup, MultiplexedScript):
            found, body = await lookup.with_get(keys, args, keys[2])
        else:
            found = await lookup(keys=keys, args=args)
            body = await cast(Any, self.redis).get(keys[2]) if found[1] == 1 else None
        return found, body

    def _found(
        self, found: list[int], body: bytes | None, kind: str, final: bool
    ) -> bytes | int | None:
        """The fresh body; else the clock a fill must be checked against; None when
        the body went (expired) between the script and its GET: read, do not fill."""
        if found[1] == 1:
            if body is None:
                return None
            self.stats.lookups += 1
            self.stats.hits += 1
            metrics.cache_hit(kind)
            return body
        if final:
            self.stats.lookups += 1
            metrics.cache_miss(kind)
        return int(found[2])

    async def get(self, key: str, tags: Iterable[str], render: Render, kind: str) -> bytes:
        """The cached body under `key`, or `render()`'s, stored if still fresh."""
        found = await self.peek(key, kind)
        if found is None:
            self.stats.bypassed += 1
            return (await render()).body
        if isinstance(found, bytes):
            return found
        snapshot = found
        flight = self._flights.get(key)
        if flight is not None and flight.snapshot == snapshot:
            try:
                body = await asyncio.shield(flight.result)
                self.stats.joined += 1
                return body
            except _Abandoned:
                pass
        self.stats.misses += 1
        return await self._load(key, [*tags], snapshot, render)

    async def _load(self, key: str, tags: list[str], snapshot: int, render: Render) -> bytes:
        flight = _Flight(snapshot, asyncio.get_running_loop().create_future())
        # Nobody may be waiting: mark the outcome as retrieved to keep asyncio quiet.
        flight.result.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._flights[key] = flight
        started = time.monotonic()
        try:
            rendered = await render()
        except asyncio.CancelledError:
            flight.result.set_exception(_Abandoned())
            raise
        except BaseException as error:
            flight.result.set_exception(error)
            raise
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.result.set_result(rendered.body)
        if time.monotonic() - started < FILL_WINDOW and self._usable():
            args: list[bytes | str | int] = [snapshot, self.ttl, self.tag_ttl, rendered.body]
            args += [*tags, *rendered.tags]
            try:
                await self._fill(keys=[key, self.clock_key, key + BODY], args=args)
            except REDIS_ERRORS as error:
                self._failed("fill", error)
        return rendered.body

    async def bump(self, tags: Iterable[str]) -> None:
        """Make every value built on `tags` unreadable (after a write's commit).

        Always tried, even while Redis seems down: a write is worth one short timeout,
        and an invalidation that reaches Redis now needs no replay later.
        """
        if self.redis is None:
            return
        wanted = set(tags)
        if self._pending:
            wanted |= self._pending | {self.everything_tag}
        try:
            await self._bump(keys=[self.clock_key], args=[self.tag_ttl, *wanted])
        except REDIS_ERRORS as error:
            self._failed("invalidation", error)  # first: it logs only if nothing was pending
            self._pending |= wanted
            return
        if self._pending:
            self._recovered()

    async def bump_everything(self) -> None:
        await self.bump([self.everything_tag])

    def _usable(self) -> bool:
        return not self._pending and not self.outage.backing_off

    async def _ready(self) -> bool:
        """Whether cached reads may be served: Redis is up and nothing is owed to it."""
        if self.outage.backing_off:
            return False
        if self._pending:
            await self.bump(())
        return not self._pending

    def _failed(self, what: str, error: BaseException) -> None:
        self.outage.failed(f"{what}: {error!r}")
        # Whatever other processes could not invalidate meanwhile is covered by
        # bumping the everything-tag before this process reads from the cache again.
        self._pending.add(self.everything_tag)
        if self._retrier is None or self._retrier.done():
            self._retrier = asyncio.get_running_loop().create_task(self._retry())

    def _recovered(self) -> None:
        self._pending.clear()
        self.outage.recovered()

    async def _retry(self) -> None:
        while self._pending:
            await asyncio.sleep(BACKOFF)
            await self.bump(())

    async def close(self) -> None:
        if self._retrier is not None:
            self._retrier.cancel()
