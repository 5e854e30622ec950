"""Configuration: the original's `.env` names and quirks, URLs, and clear failures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from eventms.config import ConfigError, load_settings
from tests.support.paths import ROOT

ENV_NAMES = (
    "DATABASE_URL",
    "DB_HOST",
    "DB_PORT",
    "DB_USERNAME",
    "DB_PASSWORD",
    "DB_NAME",
    "TTL",
    "RATE_LIMITER_TIME_TO_LEAVE",
    "RATE_LIMITER_MAX_TRY",
    "APP_PORT",
    "APP_ENV",
)


@pytest.fixture
def clean_env(monkeypatch, tmp_path) -> Path:
    """No eventms variable from the outside, and a working directory without `.env`."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_eventms(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return subprocess.run(
        [sys.executable, "-m", "eventms", *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("DB_PORT", "abc"), ("APP_PORT", "99999"), ("APP_ENV", "staging"), ("TTL", "-1")],
)
def test_invalid_value_stops_the_start_naming_the_variable(tmp_path, name, value):
    done = run_eventms("migrate", cwd=tmp_path, DB_HOST="127.0.0.1", **{name: value})
    assert done.returncode == 2, done.stderr
    assert "invalid configuration" in done.stderr
    assert name in done.stderr
    assert "Traceback" not in done.stderr
    assert "migrations applied" not in done.stdout


def test_invalid_value_in_dotenv_names_the_variable(tmp_path):
    (tmp_path / ".env").write_text("DB_HOST=127.0.0.1\nDB_PORT=five #port\n")
    done = run_eventms("migrate", cwd=tmp_path)
    assert done.returncode == 2
    assert "DB_PORT" in done.stderr


def test_load_settings_raises_config_error(clean_env, monkeypatch):
    monkeypatch.setenv("DB_PORT", "abc")
    with pytest.raises(ConfigError, match="DB_PORT"):
        load_settings()


def test_dotenv_with_the_originals_inline_comments(clean_env):
    (clean_env / ".env").write_text(
        "APP_ENV=production\n"
        "APP_PORT=3001\n"
        "# DEVELOPMENT ENVIRONMENT\n"
        "DB_HOST=db.internal\n"
        "DB_PORT=5433\n"
        "TTL=3600 #SECONDS\n"
        "RATE_LIMITER_TIME_TO_LEAVE=6000 #MILLISECONDS\n"
        "RATE_LIMITER_MAX_TRY=10\n"
    )
    settings = load_settings()
    assert settings.ttl == 3600
    assert settings.rate_limiter_time_to_leave == 6000
    assert settings.rate_limiter_max_try == 10
    assert (settings.app_env, settings.app_port) == ("production", 3001)
    url = settings.sqlalchemy_url()
    assert (url.host, url.port) == ("db.internal", 5433)


def test_env_example_parses(clean_env):
    shutil.copy(ROOT / ".env.example", clean_env / ".env")
    settings = load_settings()
    assert settings.ttl == 3600
    assert settings.rate_limiter_time_to_leave == 6000
    assert not settings.database_configured  # embedded by default


def test_database_url_beats_db_parts(clean_env, monkeypatch):
    monkeypatch.setenv("DB_HOST", "parts.example")
    monkeypatch.setenv("DB_NAME", "parts")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@url.example:6000/fromurl")
    url = load_settings().sqlalchemy_url()
    assert (url.host, url.port, url.database) == ("url.example", 6000, "fromurl")
    assert url.drivername == "postgresql+psycopg"


def test_db_parts_build_the_url(clean_env, monkeypatch):
    monkeypatch.setenv("DB_HOST", "h.example")
    monkeypatch.setenv("DB_USERNAME", "app")
    monkeypatch.setenv("DB_PASSWORD", "p@ss word")
    url = load_settings().sqlalchemy_url()
    assert (url.host, url.port, url.username, url.password, url.database) == (
        "h.example",
        5432,
        "app",
        "p@ss word",
        "event-management",
    )


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg2"])
def test_postgres_url_schemes_are_accepted(clean_env, scheme):
    url = load_settings(database_url=f"{scheme}://u@h:5432/d").sqlalchemy_url()
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.database) == ("h", "d")


def test_postgres_scheme_works_end_to_end(database_url, tmp_path):
    """Heroku-style `postgres://` reaches the real test database."""
    url = make_url(database_url).set(drivername="postgres").render_as_string(hide_password=False)
    done = run_eventms("migrate", cwd=tmp_path, DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    assert "migrations applied" in done.stdout
