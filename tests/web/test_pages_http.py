"""The web pages over ASGI (no browser): what they show, what they refuse, the
console's cookie, CSRF and scopes. The browser tests (test_browser.py) drive them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from eventms.app import create_app
from eventms.config import Settings
from tests.support.api import make_event
from tests.support.asgi import RunningApp, running

ADMIN_TOKEN = "emsk_web-admin-token-" + "x" * 24
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SOON = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()


@pytest.fixture
async def keys_app(settings: Settings) -> AsyncIterator[RunningApp]:
    update = {"auth_mode": "keys", "admin_api_key": ADMIN_TOKEN}
    async with running(create_app(settings.model_copy(update=update))) as app:
        yield app


def browser(app: RunningApp) -> httpx.AsyncClient:
    """A client that keeps cookies, as a browser does (https: the cookie is Secure)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://test")


def api(app: RunningApp, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://test/api/v1", headers=headers)


async def key_with(app: RunningApp, *scopes: str) -> str:
    async with api(app, ADMIN_TOKEN) as admin:
        body = {"name": f"k-{'-'.join(scopes)}", "scopes": scopes}
        made = await admin.post("/keys", json=body)
        assert made.status_code == 201, made.text
        return str(made.json()["result"]["token"])


async def sign_in(pages: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await pages.get("/admin")
    assert 'for="f-apiKey">API key</label>' in form.text and ">Sign in</button>" in form.text
    [csrf] = CSRF.findall(form.text)
    return await pages.post("/admin/sign-in", data={"csrf": csrf, "apiKey": token})


async def test_home_lists_upcoming_events_soonest_first_with_seats(
    client: httpx.AsyncClient, app: RunningApp
) -> None:
    later = await make_event(client, name="Later", date="2031-05-01", maxAttendees=2)
    await make_event(client, name="Sooner", date=SOON, maxAttendees=1)
    await make_event(client, name="Past", date="2020-01-01")
    signup = await client.post(
        f"/event/{later['id']}/signup", json={"name": "A", "email": "a@example.com"}
    )
    assert signup.status_code == 201
    async with browser(app) as pages:
        home = await pages.get("/")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    assert "Past" not in home.text
    assert home.text.index("Sooner") < home.text.index("Later")
    assert "1 seat left" in home.text  # Later: 2 seats, 1 taken
    assert "Content-Security-Policy" in home.headers


async def test_signup_page_outcomes_in_words(client: httpx.AsyncClient, app: RunningApp) -> None:
    event = await make_event(client, name="Tiny", maxAttendees=1)
    url = f"/events/{event['id']}/signup"
    async with browser(app) as pages:
        shown = await pages.get(f"/events/{event['id']}")
        assert 'for="f-name">Name</label>' in shown.text and ">Register</button>" in shown.text
        bad = await pages.post(url, data={"name": "Ada", "email": "not-an-email"})
        assert bad.status_code == 422 and 'id="e-email"' in bad.text
        assert '"statusCode"' not in bad.text  # words, never the API's JSON
        done = await pages.post(url, data={"name": "Ada", "email": "ada@example.com"})
        assert done.status_code == 201 and "You are registered, check your mail" in done.text
        again = await pages.post(url, data={"name": "Ada", "email": "ADA@example.com"})
        assert again.status_code == 409
        assert "You are already registered for this event" in again.text
        waiting = await pages.post(url, data={"name": "Bo", "email": "bo@example.com"})
        assert waiting.status_code == 201 and "number 1 on the waiting list" in waiting.text
        assert (await pages.get("/events/nope")).status_code == 404


async def test_console_keys_mode_cookie_csrf_and_scopes(
    keys_app: RunningApp, db: psycopg.Connection
) -> None:
    async with browser(keys_app) as pages:
        assert (await pages.get("/admin/events/new", follow_redirects=False)).status_code == 303
        assert (await sign_in(pages, "emsk_wrong")).status_code == 401
        signed = await sign_in(pages, ADMIN_TOKEN)
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie
        assert ADMIN_TOKEN not in cookie  # only the key's hash, signed
        console = await pages.get("/admin")
        assert "New event" in console.text
        [csrf] = CSRF.findall(console.text)[:1]
        form = {"name": "Gala", "date": SOON, "location": "Hall", "maxAttendees": "5"}
        forged = await pages.post("/admin/events/new", data={**form, "csrf": "forged"})
        assert forged.status_code == 403 and "expired" in forged.text
        assert db.execute("SELECT count(*) FROM events").fetchone() == (0,)
        made = await pages.post("/admin/events/new", data={**form, "csrf": csrf})
        assert made.status_code == 303, made.text
        twice = await pages.post("/admin/events/new", data={**form, "csrf": csrf})
        assert twice.status_code == 409
        assert f"An event will already take place at {SOON} in Hall" in twice.text
        event_id = made.headers["location"].split("/")[3].split("?")[0]
        shown = await pages.get(f"/admin/events/{event_id}")
        assert "Registrations" in shown.text and "Waiting list" in shown.text

    reader = await key_with(keys_app, "registrations:read")
    async with browser(keys_app) as pages:
        await sign_in(pages, reader)
        console = await pages.get("/admin")
        assert "Gala" in console.text
        assert "New event" not in console.text and ">Edit<" not in console.text
        shown = await pages.get(f"/admin/events/{event_id}")
        assert "Registrations" in shown.text and "Cancel" not in shown.text
        assert "attendees.csv" not in shown.text
        refused = await pages.get("/admin/events/new")
        assert refused.status_code == 403 and "lacks the scope events:write" in refused.text


async def test_open_console_says_so(app: RunningApp) -> None:
    async with browser(app) as pages:
        console = await pages.get("/admin")
    assert console.status_code == 200 and "Open console" in console.text
    assert "New event" in console.text and "API key" not in console.text


async def test_pages_stay_out_of_the_openapi_document(app: RunningApp) -> None:
    async with browser(app) as pages:
        paths = (await pages.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith(("/admin", "/events/"))]
    assert "/api/v1/event/{event_id}" in paths
