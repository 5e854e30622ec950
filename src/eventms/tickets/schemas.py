"""Check-in bodies: the scan, and the answer a door sees (a name, never an email)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field, StrictStr, field_serializer

from eventms.schemas import CamelModel, InputModel
from eventms.tickets.models import NONCE_MAX


def iso_utc(moment: datetime) -> str:
    """`2030-01-15T17:02:03.123456Z`: how check-in times are written everywhere (the
    answer, the 409's message, the CSV export)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class CheckinCreate(InputModel):
    code: Annotated[
        StrictStr,
        Field(
            min_length=1,
            max_length=200,
            description="the ticket code, with or without its dashes, any case",
            examples=["7K3QD-M9X2A-PW4HC-1NZ8E"],
        ),
    ]
    event_id: uuid.UUID | None = Field(
        None, description="the event being checked in: a ticket of another one is refused"
    )
    nonce: Annotated[StrictStr | None, Field(max_length=NONCE_MAX)] = Field(
        None,
        description="the scanning client's id for this scan: a retry with the same nonce"
        " gets the first answer (201) again instead of `Already checked in`",
    )


class CheckinAttendee(CamelModel):
    name: str


class CheckinOut(CamelModel):
    registration_id: uuid.UUID
    event_id: uuid.UUID
    attendee: CheckinAttendee
    checked_in_at: datetime

    @field_serializer("checked_in_at")
    def _utc(self, value: datetime) -> str:
        return iso_utc(value)
