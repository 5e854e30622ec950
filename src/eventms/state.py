"""What a running app holds: built once per process, yielded by the lifespan as its
typed state (Starlette copies it into every request's scope), closed at shutdown.

Every part is lazy (no connection is opened before the first request needs one), so
building the state outside the event loop is safe.
"""

from __future__ import annotations

from typing import TypedDict

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from eventms.access.caller import KeyRing
from eventms.cache.client import connect_redis, connect_scripts
from eventms.cache.invalidation import SESSION_CACHE
from eventms.cache.keys import Cache
from eventms.cache.multiplex import Multiplexed, ScriptHost
from eventms.config import Settings
from eventms.db.engine import create_engine, create_read_sessionmaker, create_sessionmaker
from eventms.http.ratelimit import RateLimiter
from eventms.notifications.supervisor import WorkerHealth
from eventms.realtime.messages import BROADCASTER
from eventms.realtime.server import RealtimeServer
from eventms.secret_key import load_secret_key
from eventms.selfservice.tokens import ManageTokens
from eventms.web.console_session import ConsoleSessions


class State(TypedDict):
    settings: Settings
    engine: AsyncEngine
    redis: Redis | None
    # The hot path's Lua scripts (cache lookups, rate-limit counts): one multiplexed
    # connection beside redis-py's pool.
    scripts: ScriptHost | None
    cache: Cache
    rate_limiter: RateLimiter | None
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    realtime: RealtimeServer
    keys: KeyRing
    # The in-process mail worker's health (for /ready), set once the lifespan runs it.
    worker: WorkerHealth | None
    signup_limiter: RateLimiter | None
    manage_tokens: ManageTokens
    console_sessions: ConsoleSessions


def build_state(settings: Settings) -> State:
    engine = create_engine(settings.sqlalchemy_url(), settings)
    redis = connect_redis(settings)
    scripts = connect_scripts(settings, redis)
    cache = Cache(scripts, settings.ttl)
    # Socket.IO only reads (an event on `subscribe`): sessions of its own, without
    # the effects below.
    realtime = RealtimeServer(settings, create_read_sessionmaker(engine))
    # Sessions carry the cache (services drop what their writes made stale) and the
    # broadcaster (services announce their changes), both acted on after commit.
    shared = {SESSION_CACHE: cache, BROADCASTER: realtime}
    secret_key = load_secret_key(settings)
    return State(
        settings=settings,
        engine=engine,
        redis=redis,
        scripts=scripts,
        cache=cache,
        rate_limiter=RateLimiter(scripts, settings) if scripts is not None else None,
        sessions=create_sessionmaker(engine, info=shared),
        read_sessions=create_read_sessionmaker(engine, info=shared),
        realtime=realtime,
        worker=None,
        keys=KeyRing(
            engine, open_mode=settings.access_mode == "open", admin_token=settings.admin_api_key
        ),
        signup_limiter=_signup_limiter(scripts, settings),
        manage_tokens=ManageTokens(secret_key),
        console_sessions=ConsoleSessions(secret_key),
    )


def _signup_limiter(scripts: ScriptHost | None, settings: Settings) -> RateLimiter | None:
    if scripts is None:
        return None
    return RateLimiter(
        scripts,
        settings,
        name="signups",
        limit=settings.signup_rate_limit_max_try,
        window_ms=settings.signup_rate_limit_time_to_leave,
    )


async def close_state(state: State) -> None:
    await state["realtime"].close()
    await state["cache"].close()
    if isinstance(state["scripts"], Multiplexed):
        await state["scripts"].aclose()
    if state["redis"] is not None:
        await state["redis"].aclose()
    await state["engine"].dispose()
