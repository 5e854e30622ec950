"""create_app(): routers, middleware, error handlers, lifespan; create_asgi_app(): the
same with the Socket.IO server in front, as `eventms serve` runs it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from eventms import __version__
from eventms.attendees.router import router as attendees_router
from eventms.cache import Cache, CachedReadsMiddleware, connect_redis
from eventms.config import Settings, get_settings
from eventms.db import create_engine, create_read_sessionmaker, create_sessionmaker
from eventms.events.router import router as events_router
from eventms.health import Readiness
from eventms.http.body_limit import BodyLimitMiddleware
from eventms.http.errors import UnexpectedErrorMiddleware, install_error_handlers
from eventms.http.outage import OutageMiddleware
from eventms.http.ratelimit import RateLimiter, RateLimitMiddleware
from eventms.notifications.worker import in_process_worker
from eventms.observability.metrics import process_exiting
from eventms.observability.setup import install as install_observability
from eventms.realtime.messages import BROADCASTER
from eventms.realtime.server import RealtimeServer
from eventms.registrations.router import router as registrations_router

log = logging.getLogger("eventms")

API_PREFIX = "/api/v1"

DESCRIPTION = """
Events, attendees and registrations, with capacity enforced under concurrency.

Every success answer is an envelope `{statusCode, message, result}` (lists add
`meta: {page, limit, total}`); every error is `{statusCode, message, error}` and,
for validation errors, `details: [{field, message}]`. Unknown body fields are ignored.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    realtime = RealtimeServer(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.sqlalchemy_url(), settings)
        redis = connect_redis(settings)
        cache = Cache(redis, settings.ttl)
        app.state.engine = engine
        app.state.redis = redis
        app.state.cache = cache
        app.state.rate_limiter = RateLimiter(redis, settings) if redis is not None else None
        # Sessions carry the cache (services drop what their writes made stale) and the
        # broadcaster (services announce their changes), both acted on after commit.
        shared = {"cache": cache, BROADCASTER: realtime}
        app.state.sessionmaker = create_sessionmaker(engine, info=shared)
        app.state.read_sessionmaker = create_read_sessionmaker(engine, info=shared)
        realtime.bind(app.state.sessionmaker)
        try:
            async with in_process_worker(settings) as worker:
                app.state.worker = worker  # its health, for /ready
                yield
        finally:
            await realtime.close()
            await cache.close()
            if redis is not None:
                await redis.aclose()
            await engine.dispose()
            process_exiting(settings.prometheus_multiproc_dir)

    app = FastAPI(
        title="eventms",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.realtime = realtime
    # Innermost: a cache hit still passes the rate limit, CORS and the request log.
    app.add_middleware(CachedReadsMiddleware)
    app.add_middleware(OutageMiddleware)  # a database outage: 503, not 500
    # All inside CORS, so that a 500, a 429 and a 413 carry CORS headers too.
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(RateLimitMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    install_error_handlers(app)
    for router in (events_router, attendees_router, registrations_router):
        app.include_router(router, prefix=API_PREFIX)
    _add_docs_and_probes(app)
    install_observability(app, settings)  # request ids, access log, /metrics
    return app


def create_asgi_app(settings: Settings | None = None) -> ASGIApp:
    """The API with Socket.IO served at `/socket.io/` on the same port."""
    app = create_app(settings)
    realtime: RealtimeServer = app.state.realtime
    if not realtime.uses_redis:
        log.info("Socket.IO broadcasts stay in this process (no Redis configured)")
    return realtime.asgi(app)


def _swagger_assets() -> Path:
    """Swagger UI 5 (OpenAPI 3.1) files shipped by fastapi-offline: the docs work
    without reaching a CDN (air-gapped hosts, closed networks)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def _add_docs_and_probes(app: FastAPI) -> None:
    app.mount("/api-docs/static", StaticFiles(directory=_swagger_assets()), name="swagger-static")

    @app.get("/api-docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api-docs-json",
            title="eventms API",
            swagger_js_url="/api-docs/static/swagger-ui-bundle.js",
            swagger_css_url="/api-docs/static/swagger-ui.css",
            swagger_favicon_url="/api-docs/static/favicon.png",
        )

    @app.get("/api-docs/", include_in_schema=False)
    async def swagger_ui_slash() -> HTMLResponse:
        return await swagger_ui()

    @app.get("/api-docs-json", include_in_schema=False)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/health", tags=["Probes"], summary="The process is up")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    readiness = Readiness(app.state.settings)

    @app.get(
        "/ready",
        tags=["Probes"],
        summary="Database, Redis, the in-process mail worker and the mail queue are well",
        responses={503: {"description": "A part is down: `down` lists which"}},
    )
    async def ready() -> JSONResponse:
        state = app.state
        status, body = await readiness.check(state.engine, state.redis, state.worker)
        return JSONResponse(body, status_code=status)
