"""Field types shared by every feature's schemas: strict dates, camelCase output."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
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


class CamelModel(BaseModel):
    """Output models: snake_case attributes read from ORM rows, camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class InputModel(BaseModel):
    """Request bodies: camelCase as the original's clients send it; unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
