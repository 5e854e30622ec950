"""The app in-process, as a server would run it: its lifespan running, and its
lifespan state handed to every request (httpx's ASGITransport runs no lifespan)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from eventms.state import State


class RunningApp:
    """An app whose lifespan is running, as an ASGI app that copies the lifespan's
    state into every request's scope, as uvicorn does."""

    def __init__(self, app: FastAPI, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app({**scope, "state": dict(self.state)}, receive, send)

    def __getattr__(self, name: str) -> Any:  # the app's own API (openapi(), …)
        return getattr(self.app, name)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[RunningApp]:
    async with app.router.lifespan_context(app) as state:
        yield RunningApp(app, cast(State, state))
