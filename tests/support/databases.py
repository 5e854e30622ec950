"""The tests' PostgreSQL: TEST_DATABASE_URL's server, or an embedded pgserver in
./var/test-pg, with one migrated database per checkout on it."""

from __future__ import annotations

import hashlib
import os

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from eventms.migrations import upgrade
from tests.support.paths import ROOT

# One test database per checkout, so that several checkouts can share one server.
TEST_DB = "eventms_test_" + hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
OUR_TABLES = (
    "events",
    "attendees",
    "registrations",
    "api_keys",
    "webhook_endpoints",
    "idempotency_keys",
)


def libpq(url: str) -> str:
    """A SQLAlchemy URL as the plain libpq URL psycopg.connect takes."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def server_url() -> str:
    """A psycopg URL of the tests' PostgreSQL server (its maintenance database)."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        return str(make_url(given).set(drivername="postgresql+psycopg"))
    from eventms.embedded import EmbeddedPostgres

    url = EmbeddedPostgres(ROOT / "var" / "test-pg").start()
    return url.replace("/eventms?", "/postgres?")


def fresh_test_database(server: str) -> str:
    """Drop and create this checkout's test database on `server`, run the migrations
    on it, and return its URL (SQLAlchemy, psycopg)."""
    with psycopg.connect(libpq(server), autocommit=True) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (TEST_DB,),
        )
        connection.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}"')
        connection.execute(f'CREATE DATABASE "{TEST_DB}"')
    url = make_url(server).set(database=TEST_DB).render_as_string(hide_password=False)
    upgrade(url)
    return url


def truncate(database_url: str, *tables: str) -> None:
    with psycopg.connect(libpq(database_url), autocommit=True) as connection:
        names = sql.SQL(", ").join(sql.Identifier(table) for table in tables)
        connection.execute(sql.SQL("TRUNCATE {} CASCADE").format(names))
