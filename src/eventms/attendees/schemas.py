"""Attendee request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import EmailStr, Field, model_validator

from eventms.schemas import CamelModel, InputModel

AttendeeName = Annotated[str, Field(min_length=1, max_length=100)]
Email = Annotated[EmailStr, Field(max_length=100)]


class AttendeeCreate(InputModel):
    name: AttendeeName
    email: Email


class AttendeeUpdate(InputModel):
    """Every field optional; only the fields sent are changed."""

    name: AttendeeName | None = None
    email: Email | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> AttendeeUpdate:
        for name in ("name", "email"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in self.model_fields_set}


class AttendeeOut(CamelModel):
    id: uuid.UUID
    name: str
    email: str
    created_at: datetime
    updated_at: datetime
