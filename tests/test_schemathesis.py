"""schemathesis over the service's own OpenAPI document, in process (ASGI).

Every operation gets generated inputs, valid and invalid; every answer must be no 5xx,
have a documented status, and match its documented schema. The number of cases run is
printed in pytest's terminal summary and written to `var/schemathesis-summary.txt`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig
from schemathesis.openapi import from_dict
from schemathesis.python import asgi

from eventms.app import create_app
from eventms.config import Settings, load_settings
from tests.support.databases import libpq
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow

# Cases per operation and generation mode; ~17 operations x 2 modes. Sized so the whole
# run stays near a minute on 2 cores.
MAX_EXAMPLES = 200

CASES: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()

# The document is read at import (pytest collects one test per operation from it), from
# an app that is never started: the calls go to `api_app`, on the test database.
# (schemathesis' lazy `from_fixture` loader does not work with pytest 9.2.)
# A body over MAX_BODY_BYTES (a description near its 100,000-character maxLength) is
# refused with 413 before it is read: a rejection of invalid data like a 400.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
schema = from_dict(
    create_app(load_settings(database_url="postgresql://unused/x", _env_file=None)).openapi(),
    config=SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": [*REJECTIONS, "5xx"]}}}
    ),
)


@pytest.fixture(scope="module")
def api_app(settings: Settings, database_url: str) -> Iterator[FastAPI]:
    # A few rows, so that some generated requests meet existing data.
    with psycopg.connect(libpq(database_url), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO events (id, name, date, location, max_attendees)"
            " VALUES (gen_random_uuid(), 'Seeded', '2030-01-01', 'Here', 3)"
        )
        connection.execute(
            "INSERT INTO attendees (id, name, email)"
            " VALUES (gen_random_uuid(), 'Seeded', 'seeded@example.com')"
        )
    app = create_app(settings)
    yield app
    asgi.shutdown_lifespans()  # the app's lifespan ran on schemathesis' event loop
    write_summary()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_as_documented(case, api_app):
    # Every default check but "schema-valid data must be accepted": the API is stricter
    # than JSON Schema can say (calendar dates, IANA zones, no NUL characters, blank
    # names after trimming, `from` <= `to`), and answers those with a documented 400.
    response = case.call_and_validate(app=api_app, excluded_checks=[positive_data_acceptance])
    CASES[case.operation.label] += 1
    STATUSES[response.status_code] += 1


def summary_line() -> str:
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(STATUSES.items()))
    return (
        f"schemathesis: {sum(CASES.values())} cases over {len(CASES)} operations"
        f" (max_examples={MAX_EXAMPLES}); statuses {statuses}"
    )


def write_summary() -> None:
    if not CASES:
        return
    target = ROOT / "var" / "schemathesis-summary.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [summary_line(), *(f"  {op}: {n}" for op, n in sorted(CASES.items()))]
    target.write_text("\n".join(lines) + "\n")
