"""Self-service end to end: signup, the confirmation mail's manage link read from the
SMTP sink, the page it opens, cancel there; and the link's key shared by processes."""

from __future__ import annotations

import asyncio
import re
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from eventms.app import create_app
from eventms.config import ConfigError, Settings, load_settings
from eventms.secret_key import load_secret_key
from tests.support.api import make_event
from tests.support.asgi import running
from tests.support.live_server import LiveServer
from tests.support.mail import drain
from tests.support.paths import ROOT
from tests.support.smtp import SmtpSink, body_text

APP_URL = "https://events.example/"
LINK = re.compile(r"https://events\.example/manage/([A-Za-z0-9_-]{43})")


async def test_signup_mail_link_opens_the_page_that_cancels(
    sink: SmtpSink, mail_settings: Settings, database_url: str, redis_url: str
) -> None:
    # No SECRET_KEY: this process and the other `serve` below share the kept one.
    data_dir = ROOT / "var" / "test-selfservice"
    configured = mail_settings.model_copy(update={"app_url": APP_URL, "data_dir": data_dir})
    async with running(create_app(configured)) as app:
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as api,
            httpx.AsyncClient(transport=transport, base_url="http://test") as pages,
        ):
            event = (await make_event(api, name="Launch Party", maxAttendees=1))["id"]
            signup = await api.post(
                f"/event/{event}/signup", json={"name": "Ada", "email": "ada@example.com"}
            )
            assert signup.status_code == 201, signup.text

            await drain(configured)
            [message] = sink.messages
            text, html = body_text(message), body_text(message, "html")
            [token] = set(LINK.findall(text))
            assert set(LINK.findall(html)) == {token}
            assert f'href="{APP_URL}manage/{token}"' in html

            # The link works on another process (another `serve`, or after a restart):
            # it shares the key kept in <DATA_DIR>/secret_key.
            other = await asyncio.to_thread(
                LiveServer, database_url, redis_url, DATA_DIR=str(data_dir)
            )
            try:
                async with httpx.AsyncClient(base_url=other.base) as client:
                    shown = await client.get(f"/api/v1/manage/{token}")
            finally:
                await asyncio.to_thread(other.stop)
            assert shown.status_code == 200, shown.text
            assert shown.json()["result"]["attendee"]["name"] == "Ada"

            page = await pages.get(f"/manage/{token}")
            assert page.status_code == 200
            assert "Launch Party" in page.text and "Ada" in page.text
            assert "Cancel registration" in page.text
            done = await pages.post(f"/manage/{token}/cancel")
            assert done.status_code == 200 and "canceled" in done.text
            seats = (await api.get(f"/event/{event}")).json()["result"]
            assert seats["registeredCount"] == 0 and seats["availableSeats"] == 1
            assert (await pages.get(f"/manage/{token}")).status_code == 404
            assert (await api.get(f"/manage/{token}")).status_code == 404


# --- SECRET_KEY -----------------------------------------------------------------------


def test_production_needs_a_secret_key(tmp_path: Path) -> None:
    production = load_settings(app_env="production", data_dir=tmp_path, _env_file=None)
    assert any("SECRET_KEY" in p for p in production.production_problems())
    assert not any("SECRET_KEY" in p for p in production.production_problems(database_only=True))
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_secret_key(production)
    assert not (tmp_path / "secret_key").exists()
    given = load_settings(
        app_env="production", secret_key="s" * 40, data_dir=tmp_path, _env_file=None
    )
    assert load_secret_key(given) == b"s" * 40
    assert not any("SECRET_KEY" in p for p in given.production_problems())


def test_kept_key_is_made_once_private_and_shared(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", _env_file=None)
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_secret_key(settings), range(16)))
    assert len(keys) == 1
    kept = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert sorted(p.name for p in kept.parent.iterdir()) == ["secret_key"]  # no drafts left
    # Another process (a second `serve` worker, a restart) reads the same key.
    script = (
        "from eventms.config import load_settings; from eventms.secret_key import load_secret_key;"
        f"print(load_secret_key(load_settings(data_dir={str(kept.parent)!r}, _env_file=None))"
        ".decode())"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip().encode() == keys.pop(), done.stderr
