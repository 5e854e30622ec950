"""The processes an operator runs: production guard rails, the migrate job, logs and
metrics of a live multi-process server, and graceful shutdown under load."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from eventms.config import Settings
from tests.support.deployment import cli_commands, compose
from tests.support.live_server import LiveServer
from tests.support.metrics import sample, scrape

SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def clean_env(**env: str) -> dict[str, str]:
    """This machine's environment without any eventms setting, plus `env`."""
    base = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    return {**base, **env}


def eventms(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventms", *args],
        env=clean_env(**env),
        cwd=cwd,  # no .env there
        capture_output=True,
        text=True,
        timeout=120,
    )


def cli_has(command: str) -> bool:
    return command in cli_commands()


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_production_refuses_embedded_defaults_naming_what_is_missing(command, tmp_path):
    if not cli_has(command):
        pytest.skip(f"`eventms {command}` does not exist yet")
    done = eventms(command, cwd=tmp_path, APP_ENV="production")
    assert done.returncode == 2, done.stderr
    for missing in ("DATABASE_URL or DB_HOST", "REDIS_URL or REDIS_HOST", "SMTP_HOST"):
        assert missing in done.stderr
    assert "SMTP_MAIL_FROM" in done.stderr
    assert not (tmp_path / "var").exists()  # nothing embedded was started
    assert eventms(command, "--help", cwd=tmp_path, APP_ENV="production").returncode == 0


def test_production_names_only_what_is_missing(tmp_path):
    done = eventms(
        "serve",
        cwd=tmp_path,
        APP_ENV="production",
        DB_HOST="db.invalid",
        REDIS_HOST="redis.invalid",
        SMTP_MAIL_FROM="events@example.com",
    )
    assert done.returncode == 2
    assert "SMTP_HOST" in done.stderr
    assert "DB_HOST" not in done.stderr and "REDIS" not in done.stderr


def test_production_migrate_needs_only_the_database(tmp_path):
    done = eventms("migrate", cwd=tmp_path, APP_ENV="production")
    assert done.returncode == 2
    assert "DATABASE_URL or DB_HOST" in done.stderr
    assert "SMTP" not in done.stderr


def compose_command(service: str) -> list[str]:
    return list(compose()["services"][service]["command"])


def test_the_compose_migrate_job_migrates(database_url, tmp_path, db):
    """The migrate service's command line, run as compose runs it (production)."""
    done = eventms(
        *compose_command("migrate"), cwd=tmp_path, APP_ENV="production", DATABASE_URL=database_url
    )
    assert done.returncode == 0, done.stderr
    assert "migrations applied" in done.stdout
    assert db.execute("SELECT version_num FROM alembic_version").fetchone() is not None


def test_live_server_logs_one_access_line_and_sums_metrics_over_workers(database_url, redis_url):
    """Two uvicorn processes: every scrape, whichever process answers it, counts the
    requests both served (prometheus multiprocess mode)."""
    server = LiveServer(database_url, redis_url, workers=2)
    try:
        for _ in range(20):  # a new connection each: the kernel spreads them over both
            httpx.get(f"{server.base}/health", headers={"X-Request-ID": "live-probe"})
        counts = set()
        for _ in range(6):
            text = httpx.get(f"{server.base}/metrics").text
            counts.add(
                sample(
                    scrape(text),
                    "eventms_http_requests_total",
                    method="GET",
                    route="/health",
                    status="200",
                )
            )
    finally:
        server.stop()
    assert counts == {20.0}
    lines = server.output().splitlines()
    access = [line for line in lines if "eventms.access" in line and "[live-probe]" in line]
    assert len(access) == 20
    assert all("GET /health 200" in line for line in access)
    assert not any('"GET /health HTTP/1.1"' in line for line in lines)  # uvicorn's own, off


async def register_during_sigterm(base: str, event_id: str, people: list[str], pid: int):
    """Fire all registrations, 16 at a time; SIGTERM the server after the 10th answer."""
    outcomes: list[tuple[str, str | None]] = []
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:

        async def register(attendee_id: str) -> None:
            try:
                response = await http.post(
                    "/api/v1/registration", json={"eventId": event_id, "attendeeId": attendee_id}
                )
                registration = response.json().get("result") or {}
                outcomes.append((str(response.status_code), registration.get("id")))
            except httpx.TransportError as error:
                outcomes.append((type(error).__name__, None))
            if len(outcomes) == 10:
                os.kill(pid, signal.SIGTERM)

        await asyncio.gather(*(register(person) for person in people))
    return outcomes


def test_sigterm_mid_burst_loses_no_answered_registration(database_url, redis_url, db):
    server = LiveServer(database_url, redis_url, SHUTDOWN_TIMEOUT="10")
    try:
        with httpx.Client(base_url=f"{server.base}/api/v1") as http:
            event = http.post(
                "/event",
                json={
                    "name": "Burst",
                    "date": "2031-05-01",
                    "location": "Hall",
                    "maxAttendees": 500,
                },
            ).json()["result"]
            people = [
                http.post(
                    "/attendee", json={"name": f"P{i}", "email": f"burst{i}@example.com"}
                ).json()["result"]["id"]
                for i in range(80)
            ]
        outcomes = asyncio.run(
            register_during_sigterm(server.base, event["id"], people, server.process.pid)
        )
        exit_code = server.process.wait(timeout=30)
    finally:
        server.stop()
    answered = {rid for status, rid in outcomes if status == "201"}
    stored = {
        str(row[0])
        for row in db.execute("SELECT id FROM registrations WHERE event_id = %s", (event["id"],))
    }
    others = [status for status, _ in outcomes if status != "201"]
    assert exit_code == 0, server.output()[-2000:]
    assert len(answered) >= 10
    assert answered <= stored, "a registration answered 201 is not in the database"
    assert stored == answered, "a registration was committed but never answered"
    assert all(status != "500" for status in others), others
    counter = db.execute("SELECT registered_count FROM events WHERE id = %s", (event["id"],))
    assert counter.fetchone()[0] == len(stored)
