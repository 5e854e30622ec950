"""The handlers that turn every failure into the error envelope.

Services raise the domain errors of `eventms.errors`; they never build responses.
This module maps them (and validation, routing and unexpected errors) to the
envelope, which keeps the original's NestJS shape:
`{"statusCode": 404, "message": "...", "error": "Not Found"}`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventms.errors import DomainError, InvalidInput

log = logging.getLogger("eventms.errors")


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """The error envelope (NestJS's default error body)."""

    statusCode: int
    message: str
    error: str
    details: list[ErrorDetail] | None = None


def error_response(
    status: int,
    message: str,
    error: str | None = None,
    details: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "statusCode": status,
        "message": message,
        "error": error if error is not None else HTTPStatus(status).phrase,
    }
    if details is not None:
        body["details"] = details
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "maxAttendees") -> "maxAttendees"; ("query", "from") -> "from"
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation_details(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    details = []
    for item in exc.errors():
        kind = item.get("type", "")
        if kind == "json_invalid":
            return "Malformed JSON body", [{"field": "body", "message": "Malformed JSON body"}]
        message = str(item.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if kind == "missing":
            message = "is required"
        elif kind in ("model_attributes_type", "dict_type") and _field_name(item["loc"]) == "body":
            message = "Request body must be a JSON object (Content-Type: application/json)"
        details.append({"field": _field_name(item["loc"]), "message": message})
    joined = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return joined, details


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    joined, details = _validation_details(exc)
    return error_response(400, "Validation Error", joined, details)


async def _on_domain_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if isinstance(exc, InvalidInput):
        detail = {"field": exc.field, "message": exc.detail}
        return error_response(400, exc.message, f"{exc.field}: {exc.detail}", [detail])
    return error_response(exc.status_code, exc.message, headers=exc.headers)


class AllowedMethods:
    """Every method of the resource a path names, read from the OpenAPI document.

    Starlette's own 405 lists only the first route it tried, while `/event/{id}` is
    three routes (GET, PATCH, DELETE). The first documented template that matches
    names the resource (`/event/date-range` comes before `/event/{event_id}`). Read
    once, at the first 405, when every route is in place.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._templates: list[tuple[re.Pattern[str], set[str]]] | None = None

    def of(self, path: str) -> str | None:
        if self._templates is None:
            templates = []
            for template, operations in self.app.openapi()["paths"].items():
                regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
                methods = {m.upper() for m in operations}
                if "GET" in methods:
                    methods.add("HEAD")  # Starlette answers HEAD wherever GET is
                templates.append((re.compile(f"^{regex}$"), methods))
            self._templates = templates
        for pattern, allowed in self._templates:
            if pattern.match(path):
                return ", ".join(sorted(allowed))
        return None


def _http_error_handler(
    allowed: AllowedMethods,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
        if status == 404 and message == "Not Found":
            message = "Route not found"
        headers = dict(getattr(exc, "headers", None) or {})
        if status == 405:
            headers["Allow"] = allowed.of(request.url.path) or headers.get("Allow", "")
        return error_response(status, message, headers=headers or None)

    return on_http_error


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "Internal server error")


class AnsweringErrors:
    """Pure ASGI middleware that runs the app and turns an exception raised before the
    response started into the answer `answer` gives (None: let it go on up). After the
    response started it is too late to answer: the server closes the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def answer(self, scope: Scope, error: Exception) -> Response | None:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            response = None if started else await self.answer(scope, error)
            if response is None:
                raise
            await response(scope, receive, send)


class UnexpectedErrorMiddleware(AnsweringErrors):
    """Answers an unhandled exception with the 500 envelope *inside* the CORS layer.

    Starlette turns such exceptions into a response only in its outermost layer,
    past CORS, so a browser would see a bare network error instead of the 500.
    """

    async def answer(self, scope: Scope, error: Exception) -> Response | None:
        return await _on_unexpected(Request(scope), error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler(AllowedMethods(app)))
    app.add_exception_handler(Exception, _on_unexpected)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Validation error"},
    404: {"model": ErrorBody, "description": "Not found"},
    409: {"model": ErrorBody, "description": "Conflict"},
    413: {"model": ErrorBody, "description": "Request body over MAX_BODY_BYTES"},
    429: {"model": ErrorBody, "description": "Too many requests"},
    500: {"model": ErrorBody, "description": "Internal server error"},
    503: {"model": ErrorBody, "description": "Database unavailable; see Retry-After"},
}
