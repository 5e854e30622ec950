"""Access test support: the tests' admin token, clients with a key, keys made over
the API, and every API route with its declared rule (for route x caller matrices)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from fastapi.routing import APIRoute

from eventms.access.deps import declared_access
from eventms.app import ROUTERS
from tests.support.asgi import RunningApp

ADMIN_TOKEN = "emsk_test-admin-token-" + "x" * 24


def client_for(app: RunningApp, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://test/api/v1", headers=headers)


async def new_key(admin: httpx.AsyncClient, *scopes: str) -> str:
    return str((await made_key(admin, *scopes))["token"])


async def made_key(admin: httpx.AsyncClient, *scopes: str) -> dict[str, Any]:
    name = f"k-{uuid.uuid4().hex[:8]}"
    response = await admin.post("/keys", json={"name": name, "scopes": scopes})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()["result"]
    assert made["token"].startswith("emsk_") and made["scopes"] == sorted(scopes)
    return made


def api_routes() -> list[tuple[str, str, str]]:
    """(method, path under /api/v1 with ids filled in, access rule) of every route."""
    found = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            rule = declared_access(route.dependencies)
            assert rule is not None, f"{route.path} declares no access rule"
            path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path)
            for method in sorted(route.methods or ()):
                found.append((method, path, rule))
    return found


ROUTES = api_routes()
