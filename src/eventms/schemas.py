"""Field types shared by every feature's schemas: strict dates, camelCase output."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _strict_date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("must be a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a valid calendar date") from None


StrictDate = Annotated[date, BeforeValidator(_strict_date)]


# C0 and C1 control characters and DEL, except tab, line feed and carriage return
# (a description may have lines).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile(r"[\n\r\u2028\u2029]")


def plain_text(value: str) -> str:
    """Refuse text PostgreSQL cannot store, so that it is a 400 and not a driver error:
    NUL characters (`text` columns reject them) and lone surrogates (not UTF-8); and
    control characters, which no text here means and which break the mail headers
    and calendar entries the text ends up in."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    control = _CONTROL.search(value)
    if control:
        raise ValueError(f"must not contain control characters (U+{ord(control[0]):04X})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _one_line(value: Any) -> Any:
    if isinstance(value, str):
        found = _LINE_BREAK.search(value)
        if found:
            raise ValueError(f"must be a single line (no U+{ord(found[0]):04X})")
    return value


# Names (of people, events, places) are one line: they go into mail headers, where a
# line break would end the header (or start another: `Eve\r\nBcc: ...`).
OneLine = AfterValidator(_one_line)

# A query-string text that goes into SQL as a parameter.
QueryText = Annotated[str, AfterValidator(plain_text)]


class CamelModel(BaseModel):
    """Output models: snake_case attributes read from ORM rows, camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# A required text field is checked as sent (its length is what the OpenAPI document
# promises), must hold more than whitespace, and is trimmed afterwards by `InputModel`.
NotBlank = AfterValidator(_not_blank)
NOT_BLANK_SCHEMA: dict[str, Any] = {"pattern": r"\S"}


def documented_as(kind: Any) -> WithJsonSchema:
    """Document a PATCH field as `kind` alone: it may be left out but not sent as null
    (a validator refuses null), so null stays out of the documented type."""
    return WithJsonSchema(TypeAdapter(kind).json_schema())


class InputModel(BaseModel):
    """Request bodies: camelCase as the original's clients send it; unknown fields ignored.
    Text is refused when PostgreSQL could not store it, and trimmed when it can."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return plain_text(value).strip() if isinstance(value, str) else value
