"""Event request and response bodies."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import (
    BeforeValidator,
    Field,
    StrictInt,
    WithJsonSchema,
    field_serializer,
)

from eventms.schemas import (
    LEFT_OUT,
    NOT_BLANK_SCHEMA,
    CamelModel,
    InputModel,
    NotBlank,
    OneLine,
    PatchModel,
    StrictDate,
)

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _hhmm(value: Any) -> Any:
    if value is None or isinstance(value, time):
        return value
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError("must be a time in the form HH:MM (24-hour)")
    return time.fromisoformat(value)


def _iana(value: Any) -> Any:
    if value is None:
        return value
    if not isinstance(value, str) or value not in _zones():
        raise ValueError("must be an IANA time zone name such as Europe/Paris")
    return value


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


MaxAttendees = Annotated[StrictInt, Field(ge=1, le=2_147_483_647)]
_HHMM_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": _HHMM.pattern, "example": "18:30"}, {"type": "null"}]
}
StartTime = Annotated[time | None, BeforeValidator(_hhmm), WithJsonSchema(_HHMM_SCHEMA)]
TimeZoneName = Annotated[str | None, BeforeValidator(_iana)]
Name = Annotated[
    str, Field(min_length=1, max_length=255, json_schema_extra=NOT_BLANK_SCHEMA), NotBlank, OneLine
]
Location = Annotated[str | None, Field(max_length=255), OneLine]


class EventCreate(InputModel):
    name: Name
    description: str | None = Field(None, max_length=100_000)
    date: StrictDate
    location: Location = None
    max_attendees: MaxAttendees
    start_time: StartTime = Field(None, description="local start time, HH:MM")
    timezone: TimeZoneName = Field(None, description="IANA time zone of the event")


class EventUpdate(PatchModel):
    """Every field optional; only the fields sent are changed."""

    name: Name = LEFT_OUT
    description: str | None = Field(None, max_length=100_000)
    date: StrictDate = LEFT_OUT
    location: Location = None
    max_attendees: MaxAttendees = LEFT_OUT
    start_time: StartTime = None
    timezone: TimeZoneName = None


class EventBase(CamelModel):
    id: uuid.UUID
    name: str
    description: str | None
    date: date
    location: str | None
    max_attendees: int
    registered_count: int
    available_seats: int
    start_time: Annotated[time | None, WithJsonSchema(_HHMM_SCHEMA)]
    timezone: str | None
    created_at: datetime
    updated_at: datetime
    # Ours (PRODUCT.md "Waiting list"), after the original's fields.
    waitlist_count: int
    checked_in_count: int

    @field_serializer("start_time")
    def _hhmm_out(self, value: time | None) -> str | None:
        return value.strftime("%H:%M") if value is not None else None


def event_columns(e: str) -> dict[str, str]:
    """SQL for each field of `EventBase`, over an `events` row aliased `e` (for the
    views PostgreSQL renders, see db/json.py)."""
    return {
        "id": f"{e}.id",
        "name": f"{e}.name",
        "description": f"{e}.description",
        "date": f"{e}.date",
        "location": f"{e}.location",
        "max_attendees": f"{e}.max_attendees",
        "registered_count": f"{e}.registered_count",
        "available_seats": f"{e}.max_attendees - {e}.registered_count",
        "start_time": f"{e}.start_time",
        "timezone": f"{e}.timezone",
        "created_at": f"{e}.created_at",
        "updated_at": f"{e}.updated_at",
        "waitlist_count": f"{e}.waitlist_count",
        "checked_in_count": f"{e}.checked_in_count",
    }
