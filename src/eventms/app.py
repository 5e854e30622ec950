"""create_app(): routers, middleware, error handlers, lifespan; create_asgi_app(): the
same with the Socket.IO server in front, as `eventms serve` runs it."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from eventms import __version__
from eventms.access.deps import PUBLIC, declared_access
from eventms.access.router import router as keys_router
from eventms.access.service import install_admin_key
from eventms.api.deps import StateDep
from eventms.attendees.router import router as attendees_router
from eventms.cache.fast_path import FastPath, by_id_routes
from eventms.config import Settings, get_settings
from eventms.events.router import router as events_router
from eventms.exports.router import router as exports_router
from eventms.health import Readiness
from eventms.http.body_limit import BodyLimitMiddleware
from eventms.http.cors import CORS
from eventms.http.edge import EdgeMiddleware
from eventms.http.errors import UnexpectedErrorMiddleware, install_error_handlers
from eventms.http.front import FrontDoor
from eventms.http.outage import OutageMiddleware
from eventms.idempotency.middleware import IdempotencyMiddleware
from eventms.idempotency.openapi import document_idempotency
from eventms.notifications.worker import in_process_worker
from eventms.observability.metrics import process_exiting
from eventms.observability.setup import install as install_observability
from eventms.registrations.router import router as registrations_router
from eventms.selfservice.router import router as selfservice_router
from eventms.state import State, build_state, close_state
from eventms.tickets.router import router as tickets_router
from eventms.waitlist.router import router as waitlist_router
from eventms.web.console import router as console_router
from eventms.web.console_events import router as console_events_router
from eventms.web.pages import router as pages_router
from eventms.web.setup import install_pages
from eventms.webhooks.router import router as webhooks_router

log = logging.getLogger("eventms")

API_PREFIX = "/api/v1"

DESCRIPTION = """
Events, attendees and registrations, with capacity enforced under concurrency.

Every success answer is an envelope `{statusCode, message, result}` (lists add
`meta: {page, limit, total}`); every error is `{statusCode, message, error}` and,
for validation errors, `details: [{field, message}]`. Unknown body fields are ignored.
"""


# The web pages: at the root, out of the OpenAPI document, with access rules too.
PAGE_ROUTERS = (pages_router, console_router, console_events_router)

ROUTERS = (
    events_router,
    attendees_router,
    registrations_router,
    waitlist_router,
    selfservice_router,
    tickets_router,
    exports_router,
    keys_router,
    webhooks_router,
)


def _refuse_undeclared_access(routers: tuple[APIRouter, ...]) -> None:
    """Every API route says who may call it (`requires(scope)` or `public`)."""
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and declared_access(route.dependencies) is None:
                raise RuntimeError(f"{route.path} {route.methods}: no access rule declared")


def _document_access(app: FastAPI, settings: Settings) -> None:
    """An "Authorize" button in Swagger UI, and on every operation its access rule;
    with AUTH_MODE=keys also its security requirement and the 401/403 it can answer
    (in `open` mode nothing asks for a token, and the document says so)."""
    enforced = settings.access_mode == "keys"
    rules = {}
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                for method in route.methods or ():
                    rules[(API_PREFIX + route.path, method.lower())] = declared_access(
                        route.dependencies
                    )
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        components = document.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key's token (`emsk_…`); needed with AUTH_MODE=keys.",
        }
        error = {"$ref": "#/components/schemas/ErrorBody"}
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                rule = rules.get((path, method))
                if rule is None:
                    continue
                who = (
                    "Access: anyone (with AUTH_MODE=keys, anonymous callers too)."
                    if rule == PUBLIC
                    else f"Access: scope `{rule}` (or `admin`) with AUTH_MODE=keys."
                )
                operation["description"] = (operation.get("description", "") + "\n\n" + who).strip()
                if not enforced:
                    continue
                operation["security"] = [{"bearer": []}, {}] if rule == PUBLIC else [{"bearer": []}]
                responses = operation.setdefault("responses", {})
                content = {"application/json": {"schema": error}}
                responses["401"] = {"description": "Authentication required", "content": content}
                if rule != PUBLIC:
                    responses["403"] = {
                        "description": "The key lacks the scope",
                        "content": content,
                    }
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _settle_the_heap() -> None:
    """Move everything start-up allocated (modules, the app, its routes and schemas:
    about 150,000 objects) out of the garbage collector's sight. A full collection
    over them took 80 ms of CPU and 140-580 ms under load, stalling every request in
    flight: it was the p99 (bench/results/2026-12-01-baseline.md). Frozen objects are
    never collected, which is right for what lives as long as the process."""
    gc.collect()
    gc.freeze()


async def _install_admin_key(state: State) -> None:
    token = state["settings"].admin_api_key
    if token is None:
        return
    async with state["sessions"]() as session, session.begin():
        await install_admin_key(session, token)


class EventmsAPI(FastAPI):
    """FastAPI, behind the front door (`http.front`): a cached by-id read is answered
    there, before the app's layers."""

    front_door: FrontDoor | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        door = self.front_door
        if door is None:
            await super().__call__(scope, receive, send)
        else:
            await door.serve(scope, receive, send, super().__call__)


class _Fronted:
    """An ASGI app behind a front door (the API and Socket.IO, in `create_asgi_app`)."""

    def __init__(self, app: ASGIApp, door: FrontDoor) -> None:
        self.app = app
        self.door = door

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.door.serve(scope, receive, send, self.app)


def create_app(settings: Settings | None = None, state: State | None = None) -> EventmsAPI:
    """The API. Its lifespan yields `state` (built from `settings` unless given) and
    closes it at shutdown."""
    settings = settings or get_settings()
    state = state or build_state(settings)
    _refuse_undeclared_access((*ROUTERS, *PAGE_ROUTERS))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        try:
            await _install_admin_key(state)
            _settle_the_heap()
            async with in_process_worker(settings) as worker:
                state["worker"] = worker  # its health, for /ready
                yield state
        finally:
            await close_state(state)
            process_exiting(settings.prometheus_multiproc_dir)

    app = EventmsAPI(
        title="eventms",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        # eventms measures itself (Prometheus, access lines). FastAPI's OpenTelemetry
        # hooks, on by default, asked the global OTel providers on every request
        # whether anything listens: 8 % of a cached read's CPU, for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # Innermost: it owns the transaction of a write that carries an Idempotency-Key.
    app.add_middleware(
        IdempotencyMiddleware, prefix=API_PREFIX, keys=state["keys"], settings=settings
    )
    app.add_middleware(OutageMiddleware, engine=state["engine"])  # an outage: 503, not 500
    # All inside CORS, so that a 500, a 429 and a 413 carry CORS headers too. The edge
    # answers cached by-id reads before routing (rate limit and lookup in one round trip).
    app.add_middleware(UnexpectedErrorMiddleware)
    fast_path = FastPath(by_id_routes(ROUTERS, API_PREFIX), state["cache"], state["keys"])
    app.front_door = FrontDoor(state["rate_limiter"], state["keys"], fast_path)
    app.add_middleware(
        EdgeMiddleware, limiter=state["rate_limiter"], keys=state["keys"], fast_path=fast_path
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORS,
        allow_origins=settings.cors_origins,
        # Credentials (cookies) only for the original's front ends in `open` mode:
        # keys travel in the Authorization header, which needs none.
        allow_credentials=settings.access_mode == "open",
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["X-Request-ID", "Retry-After", "Idempotent-Replayed"],
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    # At the root: the links mailed to attendees, the public pages, the console.
    install_pages(app, PAGE_ROUTERS)
    _add_docs_and_probes(app, settings)
    _document_access(app, settings)
    document_idempotency(app, API_PREFIX)
    install_observability(app, settings)  # request ids, access log, /metrics
    return app


def create_asgi_app(settings: Settings | None = None) -> ASGIApp:
    """The API with Socket.IO served at `/socket.io/` on the same port."""
    settings = settings or get_settings()
    state = build_state(settings)
    realtime = state["realtime"]
    if not realtime.uses_redis:
        log.info("Socket.IO broadcasts stay in this process (no Redis configured)")
    app = create_app(settings, state)
    # Outermost, before Socket.IO's dispatch too; the app's own door stays shut.
    door, app.front_door = app.front_door, None
    assert door is not None
    return _Fronted(realtime.asgi(app), door)


def _swagger_assets() -> Path:
    """Swagger UI 5 (OpenAPI 3.1) files shipped by fastapi-offline: the docs work
    without reaching a CDN (air-gapped hosts, closed networks)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def _add_docs_and_probes(app: FastAPI, settings: Settings) -> None:
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

    readiness = Readiness(settings)

    @app.get(
        "/ready",
        tags=["Probes"],
        summary="Database, Redis, the in-process mail worker and the mail queue are well",
        responses={503: {"description": "A part is down: `down` lists which"}},
    )
    async def ready(state: StateDep) -> JSONResponse:
        status, body = await readiness.check(state["engine"], state["redis"], state["worker"])
        return JSONResponse(body, status_code=status)
