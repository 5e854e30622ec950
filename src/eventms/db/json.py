"""Response JSON built by PostgreSQL, byte for byte as pydantic would serialize it.

A read that misses the cache is one SQL statement returning the body's `result` as
text: no ORM instances, no pydantic objects per row. Each view is declared once, as
its pydantic output model (which keeps documenting it in OpenAPI) and, for every
field, the SQL expression that gives it; fields are emitted in the model's order
under their aliases, and each value is formatted by its type:

- text, numbers, booleans, uuids, dates: `to_json(...)` (compact, like pydantic);
- `datetime`: UTC with `Z`, microseconds only when there are some (pydantic's form);
- `time`: `HH:MM` (the API's start time);
- a nested model: another `JsonObject`; a list: a `JsonArray` over a subquery.

A model field with no expression is an error at import time, so a field added to a
model cannot be forgotten here. `tests/test_json_views.py` compares every view with
pydantic's own serialization of the same rows.
"""

from __future__ import annotations

import types
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Union

from pydantic import BaseModel
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.db.queries import Page

Expression = Union[str, "JsonObject", "JsonArray"]

# pydantic's form of an aware datetime at UTC: `2026-01-02T03:04:05Z`, or
# `2026-01-02T03:04:05.120000Z` when there are microseconds.
_DATETIME = (
    "CASE WHEN ({x}) IS NULL THEN 'null' "
    "WHEN mod(extract(microseconds FROM ({x}))::bigint, 1000000) = 0"
    " THEN '\"' || to_char(({x}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || 'Z\"'"
    " ELSE '\"' || to_char(({x}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || 'Z\"'"
    " END"
)


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else annotation), True
    return annotation, False


def _scalar(kind: Any, sql: str, nullable: bool) -> str:
    if kind is datetime:
        return _DATETIME.format(x=sql)
    if kind is time:
        text = f"to_json(to_char(({sql}), 'HH24:MI'))::text"
    elif kind in (str, int, bool, float, uuid.UUID, date):
        text = f"to_json({sql})::text"
    else:
        raise TypeError(f"no JSON form for {kind!r}")
    return f"coalesce({text}, 'null')" if nullable else text


@dataclass(frozen=True)
class JsonArray:
    """A JSON array of `item` over the rows of `source` (`FROM … WHERE …`), in `order`."""

    item: JsonObject
    source: str
    order: str

    def sql(self) -> str:
        return (
            f"(SELECT '[' || coalesce(string_agg({self.item.sql()}, ',' ORDER BY {self.order}),"
            f" '') || ']' {self.source})"
        )


class JsonObject:
    """The JSON object of `model`, each field from `fields[name]` (SQL over the
    query's aliases), in the model's field order and under its aliases."""

    def __init__(self, model: type[BaseModel], fields: Mapping[str, Expression]) -> None:
        missing = [name for name in model.model_fields if name not in fields]
        if missing:
            raise TypeError(f"{model.__name__}: no SQL for {', '.join(missing)}")
        self.model = model
        parts = []
        for index, (name, info) in enumerate(model.model_fields.items()):
            key = info.serialization_alias or info.alias or name
            if model.model_config.get("alias_generator") and not info.serialization_alias:
                generator = model.model_config["alias_generator"]
                key = generator(name) if callable(generator) else key
            head = ("{" if index == 0 else ",") + f'"{key}":'
            source = fields[name]
            kind, nullable = _base_type(info.annotation)
            if isinstance(source, JsonObject | JsonArray):
                value = source.sql()
            else:
                value = _scalar(kind, source, nullable)
            parts.append(f"'{head}' || {value}")
        self._sql = "(" + " || ".join(parts) + " || '}')"

    def sql(self) -> str:
        return self._sql


@dataclass(frozen=True)
class Source:
    """Where a view's rows come from: `FROM … [WHERE …]` over the aliases its fields
    use, and the order of a list of them."""

    sql: str
    order: str = ""


async def one_json(
    session: AsyncSession, view: JsonObject, source: Source, params: dict[str, Any], *extra: str
) -> Row[Any] | None:
    """The view of the one row `source` selects (column `body`, then `extra` columns
    such as the ids its cache tags need), or None."""
    columns = ", ".join([f"{view.sql()} AS body", *extra])
    statement = text(f"SELECT {columns} {source.sql}")
    return (await session.execute(statement, params)).first()


async def page_json(
    session: AsyncSession, view: JsonObject, source: Source, page: Page, params: dict[str, Any]
) -> tuple[bytes, int]:
    """A page of the view over `source`, as a JSON array, and the number of rows in
    all (from the same scan, as `paginate` does)."""
    statement = text(
        "SELECT '[' || coalesce(string_agg(body, ',' ORDER BY n), '') || ']', max(total)"
        f" FROM (SELECT {view.sql()} AS body, row_number() OVER (ORDER BY {source.order}) AS n,"
        f" count(*) OVER () AS total {source.sql} ORDER BY {source.order}"
        " OFFSET :page_offset LIMIT :page_limit) AS page"
    )
    bound = {**params, "page_offset": page.offset, "page_limit": page.limit}
    body, total = (await session.execute(statement, bound)).one()
    if total is None:  # an empty page: the window had no row to tell the total
        total = 0
        if page.offset:
            total = await session.scalar(text(f"SELECT count(*) {source.sql}"), params) or 0
    return body.encode(), int(total)


@dataclass(frozen=True)
class Matches:
    """The rows of one table that a search selects, `FROM {table} {alias} WHERE {where}`
    (everything when `where` is empty), listed by the columns `order` (the last one
    unique). `where` holds psycopg placeholders (`%(name)s`)."""

    table: str
    alias: str
    where: str
    order: tuple[str, ...]


def matches_statement(view: JsonObject, matches: Matches) -> str:
    """`matches_page_json`'s SQL, with psycopg placeholders: the filter's, and
    `page_offset` and `page_limit`."""
    alias, order = matches.alias, matches.order
    key = order[-1]
    columns = ", ".join(f"{alias}.{column}" for column in order)
    listed = ", ".join(f"m.{column}" for column in order)
    found = f"SELECT {columns} FROM {matches.table} {alias}"
    if matches.where:
        found += f" WHERE {matches.where}"
    materialized = "MATERIALIZED" if matches.where else "NOT MATERIALIZED"
    body = view.sql().replace("%", "%%")  # a literal % to psycopg
    # The LIMIT right above the ORDER BY: a top-N sort, keeping only the page's rows.
    return (
        f"WITH matched AS {materialized} ({found})"
        f" SELECT (SELECT '[' || coalesce(string_agg({body}, ',' ORDER BY {columns}), '')"
        " || ']'"
        f" FROM (SELECT m.{key} FROM matched m ORDER BY {listed}"
        " OFFSET %(page_offset)s LIMIT %(page_limit)s) AS page"
        f" JOIN {matches.table} {alias} ON {alias}.{key} = page.{key}),"
        " (SELECT count(*) FROM matched)"
    )


async def matches_page_json(
    session: AsyncSession,
    view: JsonObject,
    matches: Matches,
    page: Page,
    params: dict[str, Any],
) -> tuple[bytes, int]:
    """A page of the view over `matches`, as a JSON array, and how many rows match
    in all: one statement (one snapshot), which also answers past the last page.

    Not `page_json`'s window (`count(*) OVER ()` beside `ORDER BY … LIMIT`), which
    PostgreSQL 15 costs as if the limit stopped the scan early: it then walks an index
    in list order and reads every row of the table to count (seconds at a million
    rows). Here the matching rows' keys are gathered once (MATERIALIZED: by the
    trigram index or a sequential scan, whichever the planner finds cheaper for this
    pattern); the count and the page (a top-N sort: no sort of all matches) read
    them, and only the page's rows are read again to be rendered. Without a filter,
    the page walks an index in list order and the count runs on its own.

    Planned for these very parameters (psycopg's `prepare=False`): once a statement
    is prepared, PostgreSQL may keep a generic plan, blind to the pattern.
    """
    bound = {**params, "page_offset": page.offset, "page_limit": page.limit}
    connection = await (await session.connection()).get_raw_connection()
    driver = connection.driver_connection  # psycopg's AsyncConnection
    assert driver is not None
    async with driver.cursor() as cursor:
        await cursor.execute(matches_statement(view, matches), bound, prepare=False)
        body, total = await cursor.fetchone() or ("[]", 0)
    return body.encode(), int(total)
