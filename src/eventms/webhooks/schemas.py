"""Webhook endpoint and delivery bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, field_validator

from eventms.schemas import LEFT_OUT, CamelModel, InputModel, PatchModel
from eventms.webhooks.catalog import EventType

Url = Annotated[str, Field(min_length=1, max_length=2000, examples=["https://example.com/hook"])]
Events = Annotated[list[EventType], Field(min_length=1, max_length=len(EventType))]


def _distinct(events: list[EventType]) -> list[EventType]:
    return sorted(set(events))


class WebhookCreate(InputModel):
    url: Url
    events: Events

    @field_validator("events")
    @classmethod
    def _events_once(cls, events: list[EventType]) -> list[EventType]:
        return _distinct(events)


class WebhookUpdate(PatchModel):
    url: Url = LEFT_OUT
    events: Events = LEFT_OUT
    enabled: bool = LEFT_OUT

    @field_validator("events")
    @classmethod
    def _events_once(cls, events: list[EventType]) -> list[EventType]:
        return _distinct(events)


class WebhookOut(CamelModel):
    id: uuid.UUID
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="why eventms disabled it, if it did")
    failing_since: datetime | None = Field(description="since when every delivery failed")
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="`whsec_…`: shown when made or rotated, never again")


class DeliveryOut(CamelModel):
    id: uuid.UUID = Field(description="its `webhook-id` header is `msg_` + this id's hex")
    webhook_id: uuid.UUID = Field(validation_alias="endpoint_id")
    event_type: str
    status: str = Field(description="`pending`, `delivered` or `failed`")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
