"""The process's Lua scripts (cache lookups, rate-limit counts, fills, bumps) over one
multiplexed Redis connection.

redis-py gives each call a pooled connection of its own: a checkout, a write, a
stream read under a timeout task, a check-in. On the cached read, which is one
script call and the bytes, that was a quarter of the CPU (bench/results). Here every
request of the process shares one connection: a call appends its command to an
outbox that is written once per turn of the event loop (32 concurrent requests, one
`write`), and Redis, which answers in order, resolves the callers' futures in the same
order as hiredis parses the replies.

Timeouts keep redis-py's meaning (REDIS_TIMEOUT: how long to wait for Redis before
going without it), with one timer per connection instead of one per call: when the
oldest unanswered call is older than the timeout, the connection is cut and every
call waiting on it fails; the next call connects anew. A connection found closed is
replaced before the call is sent, so a Redis restart costs no request.

Errors are redis-py's (`ConnectionError`, `TimeoutError`, `ResponseError`), so every
caller's handling of REDIS_ERRORS applies unchanged.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol, cast

import hiredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = bytes | str | int | float
GRACE = 0.01  # seconds: a late answer's last chance to be read (see _Pipe._check)


def _pack(args: Sequence[Arg]) -> bytes:
    # hiredis's stub types the argument as a 1-tuple; any tuple of these is packed.
    return hiredis.pack_command(tuple(args))  # type: ignore[arg-type]


class Script(Protocol):
    async def __call__(
        self, keys: Sequence[Arg] | None = None, args: Sequence[Arg] | None = None
    ) -> Any: ...


class ScriptHost(Protocol):
    """What runs the scripts: a `Multiplexed` connection, or redis-py's client."""

    def register_script(self, script: str) -> Script: ...


class _Pipe(asyncio.Protocol):
    """One connection: commands go out in order, replies resolve callers in order."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.outbox: list[bytes] = []
        self.closed = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._suspect: asyncio.Future[Any] | None = None  # late once: see _check

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.waiting
        try:
            while (reply := self.reader.gets()) is not False:
                future = waiting.popleft()[0]
                if not future.done():  # its caller may have gone away meanwhile
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as error:
            self._fail(RedisConnectionError(f"Redis protocol error: {error!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"Redis connection lost: {exc!r}"))

    # -- calls -------------------------------------------------------------------------

    def send(self, command: bytes) -> asyncio.Future[Any]:
        future = self.loop.create_future()
        if not self.waiting:
            self._arm(self.timeout)
        self.waiting.append((future, time.monotonic() + self.timeout))
        if not self.outbox:
            self.loop.call_soon(self._flush)
        self.outbox.append(command)
        return future

    def _flush(self) -> None:
        if self.outbox and not self.closed and self.transport is not None:
            self.transport.write(b"".join(self.outbox))
        self.outbox.clear()

    def _arm(self, delay: float) -> None:
        if self._watchdog is None:
            self._watchdog = self.loop.call_later(delay, self._check)

    def _check(self) -> None:
        self._watchdog = None
        if not self.waiting:
            return
        head, deadline = self.waiting[0]
        late = deadline - time.monotonic()
        if late > 0:
            self._suspect = None
            self._arm(late)
            return
        if self._suspect is not head:
            # After a stall of the whole process (CPU starvation, a debugger), uvloop
            # runs due timers before it reads the sockets: the answer may be waiting
            # unread. Give the reads one more short look before giving up.
            self._suspect = head
            self._arm(GRACE)
            return
        self._fail(RedisTimeoutError(f"no answer from Redis within {self.timeout} s"))

    def _fail(self, error: Exception) -> None:
        """Cut the connection and fail every call waiting on it."""
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self.transport is not None:
            self.transport.abort()
        while self.waiting:
            future = self.waiting.popleft()[0]
            if not future.done():
                future.set_exception(error)
        self.outbox.clear()

    def close(self) -> None:
        self._fail(RedisConnectionError("connection closed"))


class Multiplexed:
    """One Redis connection per process (and event loop) for many concurrent calls."""

    def __init__(self, url: str, timeout: float) -> None:
        options = parse_url(url)
        self.path: str | None = options.get("path")
        self.host: str = options.get("host", "localhost")
        self.port: int = int(options.get("port", 6379))
        self.timeout = timeout
        # Sent first on every new connection, in the same write as the first call.
        hello: list[bytes] = []
        if options.get("password") is not None:
            auth = [options.get("username"), options["password"]]
            hello.append(_pack(["AUTH", *[a for a in auth if a is not None]]))
        if int(options.get("db") or 0):
            hello.append(_pack(["SELECT", int(options["db"])]))
        self.hello = hello
        self._pipe: _Pipe | None = None
        self._connecting: asyncio.Future[_Pipe] | None = None

    @staticmethod
    def supports(url: str) -> bool:
        """Plain TCP and unix sockets; TLS (`rediss://`) stays with redis-py."""
        return url.startswith(("redis://", "unix://"))

    def register_script(self, script: str) -> Script:
        return MultiplexedScript(self, script)

    async def pipe(self) -> _Pipe:
        """The open connection (opened now if need be)."""
        pipe = self._pipe
        if pipe is None or pipe.closed or pipe.loop is not asyncio.get_running_loop():
            pipe = await self._connect()
        return pipe

    async def call(self, *args: Arg) -> Any:
        """Send one command; its reply (an error reply raises `ResponseError`)."""
        reply = await (await self.pipe()).send(_pack(args))
        if isinstance(reply, hiredis.ReplyError):
            raise ResponseError(str(reply))
        return reply

    async def _connect(self) -> _Pipe:
        if self._connecting is not None and not self._connecting.done():
            return await asyncio.shield(self._connecting)
        self._connecting = asyncio.get_running_loop().create_future()
        self._connecting.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            pipe = await asyncio.wait_for(self._open(), self.timeout)
        except (TimeoutError, OSError, RedisConnectionError) as error:
            failure = RedisConnectionError(f"cannot connect to Redis: {error!r}")
            self._connecting.set_exception(failure)
            raise failure from error
        self._pipe = pipe
        self._connecting.set_result(pipe)
        return pipe

    async def _open(self) -> _Pipe:
        loop = asyncio.get_running_loop()
        pipe = _Pipe(self.timeout)
        try:
            if self.path is not None:
                await loop.create_unix_connection(lambda: pipe, self.path)
            else:
                await loop.create_connection(lambda: pipe, self.host, self.port)
            for answer in [pipe.send(command) for command in self.hello]:
                reply = await answer
                if isinstance(reply, hiredis.ReplyError):
                    raise RedisConnectionError(f"Redis refused the connection: {reply}")
        except BaseException:  # refused, or cut off by the connect timeout
            pipe.close()
            raise
        return pipe

    async def aclose(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None


class MultiplexedScript:
    """A Lua script run by its SHA1, sent whole once Redis says it does not know it."""

    def __init__(self, host: Multiplexed, source: str) -> None:
        self.host = host
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(
        self, keys: Sequence[Arg] | None = None, args: Sequence[Arg] | None = None
    ) -> Any:
        keys = keys or ()
        args = args or ()
        try:
            return await self.host.call("EVALSHA", self.sha, len(keys), *keys, *args)
        except ResponseError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
        return await self.host.call("EVAL", self.source, len(keys), *keys, *args)

    async def with_get(self, keys: Sequence[Arg], args: Sequence[Arg], key: Arg) -> tuple[Any, Any]:
        """The script's reply and `GET key`'s, sent together: one round trip. (A value
        read this way need not pass through Lua, where a body of a few KB cost Redis
        more than the rest of the script.)"""
        pipe = await self.host.pipe()
        ran = pipe.send(_pack(("EVALSHA", self.sha, len(keys), *keys, *args)))
        got = pipe.send(_pack(("GET", key)))
        try:
            reply = await ran
        except BaseException:
            got.add_done_callback(_retrieved)
            raise
        value = await got
        if isinstance(reply, hiredis.ReplyError):
            if not str(reply).startswith("NOSCRIPT"):
                raise ResponseError(str(reply))
            reply = await self.host.call("EVAL", self.source, len(keys), *keys, *args)
            value = await self.host.call("GET", key)
        if isinstance(value, hiredis.ReplyError):
            raise ResponseError(str(value))
        return reply, value


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a reply nobody will read as read (asyncio warns of unread failures)."""
    if not future.cancelled():
        future.exception()
