"""Attendee request bodies, and the attendee as every view shows it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import EmailStr, Field

from eventms.schemas import (
    LEFT_OUT,
    NOT_BLANK_SCHEMA,
    CamelModel,
    InputModel,
    NotBlank,
    OneLine,
    PatchModel,
)

AttendeeName = Annotated[
    str, Field(min_length=1, max_length=100, json_schema_extra=NOT_BLANK_SCHEMA), NotBlank, OneLine
]
Email = Annotated[EmailStr, Field(max_length=100)]


class AttendeeCreate(InputModel):
    name: AttendeeName
    email: Email


class AttendeeUpdate(PatchModel):
    """Every field optional; only the fields sent are changed."""

    name: AttendeeName = LEFT_OUT
    email: Email = LEFT_OUT


class AttendeeOut(CamelModel):
    id: uuid.UUID
    name: str
    email: str
    created_at: datetime
    updated_at: datetime


def attendee_columns(a: str) -> dict[str, str]:
    """SQL for each field of `AttendeeOut`, over an `attendees` row aliased `a`."""
    return {
        "id": f"{a}.id",
        "name": f"{a}.name",
        "email": f"{a}.email",
        "created_at": f"{a}.created_at",
        "updated_at": f"{a}.updated_at",
    }
