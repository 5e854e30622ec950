"""Migration 0006 on a database that already has registrations: each gets its own
ticket code; the models and the migrated schema agree; it downgrades cleanly."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from eventms.migrations import alembic_config, upgrade
from eventms.models import Base
from eventms.tickets.codes import ALPHABET
from tests.support.databases import libpq as _libpq

pytestmark = pytest.mark.slow


@pytest.fixture
def scratch_url(database_url: str) -> Iterator[str]:
    name = f"{make_url(database_url).database}_tickets"
    server = _libpq(str(make_url(database_url).set(database="postgres")))
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    yield str(make_url(database_url).set(database=name).render_as_string(hide_password=False))
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_existing_registrations_get_tickets_and_the_schema_matches(scratch_url):
    upgrade(scratch_url, "0003")
    with psycopg.connect(_libpq(scratch_url), autocommit=True) as db:
        db.execute(
            "INSERT INTO events (id, name, date, max_attendees)"
            " VALUES ('00000000-0000-0000-0000-000000000001', 'Old', '2030-01-01', 500)"
        )
        db.execute(
            "INSERT INTO attendees (id, name, email)"
            " SELECT gen_random_uuid(), 'P' || i, 'p' || i || '@example.com'"
            " FROM generate_series(1, 300) AS i"
        )
        db.execute(
            "INSERT INTO registrations (id, event_id, attendee_id)"
            " SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000001', id"
            " FROM attendees"
        )
    upgrade(scratch_url)
    with psycopg.connect(_libpq(scratch_url), autocommit=True) as db:
        codes = [row[0] for row in db.execute("SELECT ticket_code FROM registrations")]
        counted = db.execute("SELECT checked_in_count FROM events").fetchone()[0]  # type: ignore[index]
    assert len(codes) == 300 and len(set(codes)) == 300
    assert all(re.fullmatch(rf"[{ALPHABET}]{{20}}", code) for code in codes)
    # Every character of the alphabet turns up: the codes are not stuck on a subset.
    assert set("".join(codes)) == set(ALPHABET)
    assert counted == 0

    engine = create_engine(make_url(scratch_url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    mine = [d for d in differences if "checkin" in repr(d) or "ticket" in repr(d)]
    assert mine == [], mine

    command.downgrade(alembic_config(scratch_url), "0005")
    with psycopg.connect(_libpq(scratch_url), autocommit=True) as db:
        left = db.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE column_name IN ('ticket_code', 'checked_in_count')"
        ).fetchone()[0]  # type: ignore[index]
        assert left == 0
        gone = db.execute("SELECT to_regclass('checkins')").fetchone()
        assert gone is not None and gone[0] is None
