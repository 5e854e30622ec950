"""The `eventms` command: help, seed and migrate against the test database."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from eventms.config import Settings
from eventms.migrations import alembic_config
from eventms.seed import seed_database

ENTRY = Path(sys.executable).parent / "eventms"


def run(*args: str, database_url: str | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_URL"))}
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [str(ENTRY), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_help_lists_the_commands(tmp_path):
    done = run("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for command in ("serve", "migrate", "seed"):
        assert command in done.stdout
    serve = run("serve", "--help", cwd=tmp_path)
    assert serve.returncode == 0
    for option in ("--host", "--port", "--workers"):
        assert option in serve.stdout
    seed = run("seed", "--help", cwd=tmp_path)
    assert "--events" in seed.stdout and "--attendees" in seed.stdout


def test_seed_creates_the_rows(database_url, db, tmp_path):
    done = run(
        "seed", "--events", "5", "--attendees", "20", database_url=database_url, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "seeded 5 events and 20 attendees" in done.stdout
    events, attendees, registrations = db.execute(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM attendees),"
        " (SELECT count(*) FROM registrations)"
    ).fetchone()
    assert (events, attendees, registrations) == (5, 20, 0)
    # The rows are valid ones: seats free, emails unique whatever the case.
    assert db.execute(
        "SELECT count(*) FROM events WHERE registered_count = 0 AND max_attendees >= 1"
    ).fetchone() == (5,)
    assert db.execute("SELECT count(DISTINCT lower(email)) FROM attendees").fetchone() == (20,)
    again = run(
        "seed", "--events", "5", "--attendees", "20", database_url=database_url, cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert db.execute("SELECT count(*) FROM attendees").fetchone() == (40,)


async def test_seed_skips_the_rows_that_clash(settings: Settings, db, monkeypatch):
    """Seeding the same run again, longer: its first rows clash (a booked location and
    date, a taken email), so their chunks go through the staging table, which skips
    them, and the rest are copied. Small chunks: several at once on each connection."""
    monkeypatch.setattr("eventms.seed.CHUNK", 4)

    async def seed(events: int, attendees: int) -> tuple[int, int]:
        same = random.Random(7)  # the same names, hence the same emails, each time
        return await seed_database(
            settings, events=events, attendees=attendees, rng=same, run="clash"
        )

    assert await seed(3, 0) == (3, 0)
    assert await seed(5, 0) == (2, 0)
    assert await seed(0, 10) == (0, 10)
    db.execute("UPDATE attendees SET email = upper(email)")  # taken whatever the case
    assert await seed(0, 25) == (0, 15)
    counted = db.execute("SELECT count(*), count(DISTINCT lower(email)) FROM attendees")
    assert counted.fetchone() == (25, 25)
    assert db.execute("SELECT count(*) FROM events").fetchone() == (5,)


@pytest.mark.parametrize("value", ["-1", "x"])
def test_seed_refuses_bad_counts(database_url, db, tmp_path, value):
    done = run("seed", "--events", value, database_url=database_url, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert db.execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_migrate_is_idempotent(database_url, db, tmp_path):
    def schema() -> list[tuple[str, str]]:
        return db.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()

    before = schema()
    for _ in range(2):
        done = run("migrate", database_url=database_url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "migrations applied" in done.stdout
    assert schema() == before
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
