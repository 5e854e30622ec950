"""Probes, documentation routes and CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest


@pytest.fixture
async def root(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_health(root):
    response = await root.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_the_database_answers(root):
    response = await root.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "up",
        "redis": "up",
        "worker": "off",  # the tests' apps run no in-process worker
        "mailQueue": "ok",
        "oldestDueMailSeconds": 0.0,
    }


async def test_ready_is_503_when_the_database_is_gone(settings):
    """A real unreachable server: a port nothing listens on."""
    from eventms.app import create_app
    from eventms.loopback import free_port
    from tests.support.asgi import running

    down = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"}
    )
    async with running(create_app(down)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            assert (await http.get("/health")).status_code == 200
            response = await http.get("/ready")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "down",
        "redis": "up",
        "worker": "off",
        "mailQueue": "unknown",
        "oldestDueMailSeconds": None,
        "down": ["database"],
    }


@pytest.mark.parametrize("path", ["/api-docs", "/api-docs/"])
async def test_swagger_ui_is_served(root, path):
    response = await root.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in response.text
    assert "/api-docs-json" in response.text


async def test_openapi_document_on_both_paths(root):
    first = await root.get("/api-docs-json")
    second = await root.get("/openapi.json")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    document = first.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in (
        "/api/v1/event",
        "/api/v1/event/date-range",
        "/api/v1/event/{event_id}",
        "/api/v1/attendee",
        "/api/v1/attendee/{attendee_id}",
        "/api/v1/registration",
        "/api/v1/registration/{registration_id}",
    ):
        assert path in paths
        for operation in paths[path].values():
            for status in ("400", "404", "409", "500"):
                assert status in operation["responses"], (path, status)


async def test_cors_preflight_is_open(root):
    response = await root.options(
        "/api/v1/event",
        headers={
            "Origin": "https://front.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "https://front.example")
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()
    assert response.headers.get("access-control-allow-credentials") == "true"


async def test_cors_headers_on_answers(root):
    response = await root.get("/api/v1/event", headers={"Origin": "https://front.example"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "https://front.example")
    missing = await root.get("/api/v1/event/nope", headers={"Origin": "https://front.example"})
    assert missing.status_code == 404
    assert "access-control-allow-origin" in missing.headers


async def test_unknown_route_and_method_answer_in_the_envelope(root):
    response = await root.get("/api/v1/nothing")
    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404,
        "message": "Route not found",
        "error": "Not Found",
    }
    response = await root.put("/api/v1/event/6f1c0000-0000-0000-0000-000000000000", json={})
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}
    response = await root.put("/api/v1/event", json={})
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


async def test_allow_names_the_resource_a_static_path_shadows(root):
    response = await root.options("/api/v1/event/date-range")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}


async def test_answers_vary_by_origin_once_cached_or_not(root):
    made = await root.post(
        "/api/v1/event", json={"name": "Vary", "date": "2031-01-02", "maxAttendees": 3}
    )
    path = f"/api/v1/event/{made.json()['result']['id']}"
    for answer in (made, await root.get(path), await root.get(path), await root.get("/health")):
        assert answer.headers.get_list("vary") == ["Origin"], answer.headers


@pytest.mark.parametrize("origin", [None, "https://front.example"])
@pytest.mark.parametrize("vary", [None, "Accept-Encoding"])
async def test_cors_headers_are_starlettes(origin: str | None, vary: str | None) -> None:
    """`http.cors.CORS` answers with exactly the headers of Starlette's CORSMiddleware."""
    from starlette.middleware.cors import CORSMiddleware
    from starlette.responses import PlainTextResponse

    from eventms.http.cors import CORS

    async def endpoint(scope, receive, send):
        headers = {"Vary": vary} if vary else None
        await PlainTextResponse("hi", headers=headers)(scope, receive, send)

    answers = []
    for middleware in (CORSMiddleware, CORS):
        app = middleware(endpoint, allow_origins=["*"], allow_credentials=True, allow_methods=["*"])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as http:
            answer = await http.get("/", headers={"Origin": origin} if origin else {})
        answers.append(answer.headers.raw)
    assert answers[0] == answers[1]
    assert (b"vary", b"Accept-Encoding, Origin" if vary else b"Origin") in answers[1]
