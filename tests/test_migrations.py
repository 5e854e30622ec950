"""The models declare what the migrations build, so autogenerate proposes nothing.

Compared on the test database, which the session fixture built with the real
migrations: Alembic's own comparison (tables, columns, types, indexes, unique and
foreign keys), then what it leaves out (index methods, operator classes, partial
index predicates, check constraints), then the `alembic -x url=...` command line
that alembic.ini documents.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pprint import pformat
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, Index, create_engine, inspect, pool
from sqlalchemy.engine import Connection, make_url

from eventms.migrations import alembic_config
from eventms.migrations.compare import REQUIRES_EXTENSION, installed_extensions, schema_differences
from eventms.models import Base
from tests.support.paths import ROOT


@pytest.fixture
def connection(database_url: str) -> Iterator[Connection]:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    with engine.connect() as connected:
        yield connected
    engine.dispose()


def test_autogenerate_finds_nothing_to_change(connection: Connection) -> None:
    differences = schema_differences(connection, Base.metadata)
    assert differences == [], "models and migrations differ:\n" + pformat(differences)


def test_procrastinate_tables_exist_but_are_left_out(connection: Connection) -> None:
    """The comparison above passes because it skips the job queue, not because the
    job queue is missing."""
    tables = set(inspect(connection).get_table_names())
    assert {"procrastinate_jobs", "procrastinate_workers"} <= tables
    assert not [name for name in Base.metadata.tables if name.startswith("procrastinate_")]


def _expected_indexes(connection: Connection) -> Iterator[Index]:
    extensions = installed_extensions(connection)
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            needed = index.info.get(REQUIRES_EXTENSION)
            if needed is None or needed in extensions:
                yield index


def _unwrapped(predicate: str | None) -> str | None:
    """A partial index predicate as PostgreSQL prints it, without the outer parentheses."""
    if predicate and predicate.startswith("(") and predicate.endswith(")"):
        return predicate[1:-1]
    return predicate


def test_index_methods_operator_classes_and_predicates_match(connection: Connection) -> None:
    inspector = inspect(connection)
    reflected: dict[str, dict[str, Any]] = {}
    for table in Base.metadata.tables:
        for found in inspector.get_indexes(table):
            options = found.get("dialect_options", {})
            reflected[str(found["name"])] = {
                "using": options.get("postgresql_using", "btree"),
                "ops": options.get("postgresql_ops", {}),
                "where": _unwrapped(options.get("postgresql_where")),
            }
    declared = {}
    for index in _expected_indexes(connection):
        postgresql = index.dialect_options["postgresql"]
        where = postgresql["where"]
        declared[str(index.name)] = {
            "using": postgresql["using"] or "btree",
            "ops": dict(postgresql["ops"] or {}),
            "where": None if where is None else str(where),
        }
    assert declared == {name: reflected.get(name) for name in declared}


def test_check_constraints_match(connection: Connection) -> None:
    inspector = inspect(connection)
    reflected = {
        (table, check["name"], check["sqltext"])
        for table in Base.metadata.tables
        for check in inspector.get_check_constraints(table)
    }
    declared = {
        (table.name, str(constraint.name), str(constraint.sqltext))
        for table in Base.metadata.sorted_tables
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    assert declared == reflected


def test_trigram_indexes_are_expected_exactly_where_pg_trgm_is(connection: Connection) -> None:
    names = {index.name for index in _expected_indexes(connection)}
    trigram = {"ix_attendees_search_trgm"}
    if "pg_trgm" in installed_extensions(connection):
        assert trigram <= names
    else:
        assert not trigram & names


def _alembic(database_url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The `alembic` command as a developer runs it: from the repository root, with
    alembic.ini and a plain libpq URL."""
    plain = make_url(database_url).set(drivername="postgresql")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-x",
            f"url={plain.render_as_string(hide_password=False)}",
            *arguments,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_alembic_command_line_reads_the_x_url(database_url: str) -> None:
    current = _alembic(database_url, "current")
    assert current.returncode == 0, current.stderr
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert f"{head} (head)" in current.stdout
    check = _alembic(database_url, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_alembic_command_line_without_a_database_says_how_to_give_one() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "current"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "alembic -x url=" in done.stderr
