"""Field types shared by every feature's schemas: strict dates, camelCase output."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
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


class InputModel(BaseModel):
    """Request bodies: snake_case fields (the column names), read from the camelCase
    the original's clients send (and only from it); unknown fields ignored. Text is
    refused when PostgreSQL could not store it, and trimmed when it can."""

    model_config = ConfigDict(
        extra="ignore", alias_generator=to_camel, validate_by_alias=True, validate_by_name=False
    )

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return plain_text(value).strip() if isinstance(value, str) else value


# The default of a PATCH field whose column is required: it may be left out (and is
# then not in `model_dump(exclude_unset=True)`) but not sent as null. Typed Any so
# that the field keeps its non-null type.
LEFT_OUT: Any = None


def _drop_null_defaults(schema: dict[str, Any]) -> None:
    for field in schema.get("properties", {}).values():
        if field.get("default", ...) is None:
            del field["default"]


class PatchModel(InputModel):
    """Update bodies: every field may be left out, and only the fields sent change
    (`model_dump(exclude_unset=True)` gives them, by column name).

    A field whose type does not admit None (a required column) may be left out but
    not sent as null; its default None is never validated, and is left out of the
    documented schema.
    """

    model_config = ConfigDict(json_schema_extra=_drop_null_defaults)

    @field_validator("*", mode="before")
    @classmethod
    def _required_stay_set(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if type(None) not in get_args(annotation):
                raise ValueError("cannot be null")
        return value
