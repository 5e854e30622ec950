"""Attendee request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import EmailStr, Field, field_validator

from eventms.schemas import (
    NOT_BLANK_SCHEMA,
    CamelModel,
    InputModel,
    NotBlank,
    OneLine,
    documented_as,
)

AttendeeName = Annotated[
    str, Field(min_length=1, max_length=100, json_schema_extra=NOT_BLANK_SCHEMA), NotBlank, OneLine
]
Email = Annotated[EmailStr, Field(max_length=100)]


class AttendeeCreate(InputModel):
    name: AttendeeName
    email: Email


class AttendeeUpdate(InputModel):
    """Every field optional; only the fields sent are changed."""

    name: Annotated[AttendeeName | None, documented_as(AttendeeName)] = None
    email: Annotated[Email | None, documented_as(Email)] = None

    # Runs only for fields that were sent: they may be left out, not nulled.
    @field_validator("name", "email", mode="before")
    @classmethod
    def _no_nulls(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value

    def changes(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in self.model_fields_set}


class AttendeeOut(CamelModel):
    id: uuid.UUID
    name: str
    email: str
    created_at: datetime
    updated_at: datetime
