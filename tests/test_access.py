"""Access control through HTTP (AUTH_MODE=keys): every route x {anonymous, wrong
scope, right scope, revoked key}, generated from the routes themselves; the public
view; the cache attack (a full view cached for a key, read back anonymously); keys
over the API and the CLI; revocation seen by a second instance within 5 s."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from eventms.access.deps import PUBLIC
from eventms.access.scopes import Scope
from eventms.app import ROUTERS
from tests.support.access import (
    ADMIN_TOKEN,
    ROUTES,
    client_for,
    made_key,
    new_key,
)
from tests.support.api import make_attendee, make_event, register
from tests.support.live_server import LiveServer


@pytest.mark.parametrize(("method", "path", "rule"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_every_route_by_caller(keys_app, admin, method, path, rule):
    everything_else = [s.value for s in Scope if s.value not in (rule, Scope.ADMIN)]
    wrong = await new_key(admin, *everything_else)
    right = await new_key(admin, rule) if rule != PUBLIC else wrong
    doomed = await made_key(admin, Scope.ADMIN.value)
    revoked = doomed["token"]
    assert (await admin.delete(f"/keys/{doomed['id']}")).status_code == 200
    assert doomed["id"] not in {k["id"] for k in (await admin.get("/keys")).json()["result"]}

    async def call(token: str | None) -> httpx.Response:
        async with client_for(keys_app, token) as http:
            return await http.request(method, path, json={})

    anonymous = await call(None)
    if rule == PUBLIC:
        assert anonymous.status_code not in (401, 403), anonymous.text
    else:
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.json()["message"] == "Authentication required"
        assert anonymous.headers["www-authenticate"] == "Bearer"

    refused = await call(wrong)
    if rule == PUBLIC:
        assert refused.status_code not in (401, 403), refused.text
    else:
        assert refused.status_code == 403, refused.text
        assert refused.json() == {
            "statusCode": 403,
            "message": f"This key lacks the scope {rule}",
            "error": "Forbidden",
        }

    allowed = await call(right)
    assert allowed.status_code not in (401, 403), allowed.text

    gone = await call(revoked)
    assert gone.status_code == 401, gone.text
    assert gone.json()["message"] == "Invalid or revoked API key"
    assert gone.headers["www-authenticate"] == "Bearer"


async def test_a_made_up_token_is_401_even_on_public_routes(keys_app):
    async with client_for(keys_app, "emsk_made-up") as http:
        response = await http.get("/event")
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid or revoked API key"


def test_a_route_without_an_access_rule_stops_the_app(settings):
    from fastapi import APIRouter

    from eventms import app as app_module

    stray = APIRouter(prefix="/stray")

    @stray.get("")
    async def undeclared() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="no access rule"):
        app_module._refuse_undeclared_access((*ROUTERS, stray))


async def seeded(admin: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    event = await make_event(admin, maxAttendees=5)
    person = await make_attendee(admin, email="secret.person@example.com")
    assert (await register(admin, event["id"], person["id"])).status_code == 201
    return event, person


def shows_no_attendee_data(body: str) -> bool:
    return "@" not in body and "eventAttendees" not in body and "secret.person" not in body


async def test_anonymous_callers_see_the_public_view_only(keys_app, admin):
    event, _ = await seeded(admin)
    reader = await new_key(admin, Scope.ATTENDEES_READ.value)
    writer = await new_key(admin, Scope.EVENTS_WRITE.value)
    views = [f"/event/{event['id']}", "/event", "/event/date-range?from=2000-01-01&to=2100-01-01"]
    for view in views:
        full = await admin.get(view)  # warms the cache with the full view
        assert "secret.person@example.com" in full.text
        for token in (None, writer):
            async with client_for(keys_app, token) as http:
                public = await http.get(view)
            assert public.status_code == 200
            assert shows_no_attendee_data(public.text), public.text
        async with client_for(keys_app, reader) as http:
            assert "secret.person@example.com" in (await http.get(view)).text
    async with client_for(keys_app) as http:
        one = (await http.get(f"/event/{event['id']}")).json()["result"]
    assert one["registeredCount"] == 1 and one["availableSeats"] == 4


async def test_open_mode_is_the_original_contract(client):
    event = await make_event(client)
    response = await client.get(f"/event/{event['id']}", headers={"Authorization": "Bearer x"})
    assert response.status_code == 200
    assert "eventAttendees" in response.json()["result"]


@pytest.fixture(scope="module")
def two_instances(database_url: str, redis_url: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    first = LiveServer(database_url, redis_url, AUTH_MODE="keys", ADMIN_API_KEY=ADMIN_TOKEN)
    second = LiveServer(database_url, redis_url, AUTH_MODE="keys", ADMIN_API_KEY=ADMIN_TOKEN)
    yield first, second
    first.stop()
    second.stop()


def test_cache_attack_across_two_instances(two_instances):
    first, second = two_instances
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=f"{first.base}/api/v1", headers=admin) as http:
        event = http.post(
            "/event", json={"name": "E", "date": "2031-05-01", "location": "X", "maxAttendees": 3}
        ).json()["result"]
        person = http.post("/attendee", json={"name": "P", "email": "hidden@example.com"}).json()
        made = http.post(
            "/registration", json={"eventId": event["id"], "attendeeId": person["result"]["id"]}
        )
        assert made.status_code == 201
        for _ in range(2):  # a miss then a hit: the full view is cached
            assert "hidden@example.com" in http.get(f"/event/{event['id']}").text
    for server in (first, second):
        for _ in range(3):
            body = httpx.get(f"{server.base}/api/v1/event/{event['id']}").text
            assert shows_no_attendee_data(body), body
            assert "hidden@example.com" not in httpx.get(f"{server.base}/api/v1/event").text
    assert "key=ADMIN_API_KEY" in first.output()
    assert ADMIN_TOKEN not in first.output()


def test_a_revoked_key_is_refused_by_every_instance_within_5_seconds(two_instances):
    first, second = two_instances
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    made = httpx.post(
        f"{first.base}/api/v1/keys",
        json={"name": f"door-{uuid.uuid4().hex[:6]}", "scopes": ["attendees:read"]},
        headers=admin,
    ).json()["result"]
    token = {"Authorization": f"Bearer {made['token']}"}
    for server in (first, second):  # both instances now keep the key
        assert httpx.get(f"{server.base}/api/v1/attendee", headers=token).status_code == 200
    revoked = httpx.delete(f"{first.base}/api/v1/keys/{made['id']}", headers=admin)
    assert revoked.status_code == 200
    assert httpx.get(f"{first.base}/api/v1/attendee", headers=token).status_code == 401
    started = time.monotonic()
    while httpx.get(f"{second.base}/api/v1/attendee", headers=token).status_code != 401:
        assert time.monotonic() - started < 5, "the second instance still accepts the key"
        time.sleep(0.1)


def test_keys_from_the_cli(database_url, tmp_path):
    import os

    env = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": "test", "REDIS_URL": ""}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "eventms", "keys", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    created = cli("create", "scanner", "--scope", "attendees:read", "--scope", "checkin")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("emsk_") and len(token) > 40
    listed = cli("list")
    assert "scanner" in listed.stdout and "attendees:read checkin" in listed.stdout
    assert token not in listed.stdout
    assert cli("create", "scanner", "--scope", "checkin").returncode == 1  # name taken
    assert cli("create", "x", "--scope", "nonsense").returncode == 2
    assert cli("revoke", "scanner").returncode == 0
    assert "scanner" not in cli("list").stdout
    assert cli("revoke", "scanner").returncode == 1
