"""Mount the web pages on the app: their routers at the root, the static files at
`/static`, and the console's refusal pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from eventms.web.console_access import ConsoleRefusal, refusal_page

STATIC = Path(__file__).resolve().parent / "static"


def install_pages(app: FastAPI, routers: tuple[APIRouter, ...]) -> None:
    for router in routers:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(ConsoleRefusal, refusal_page)
