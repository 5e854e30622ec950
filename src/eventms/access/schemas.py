"""API key request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from eventms.access.scopes import Scope
from eventms.schemas import NOT_BLANK_SCHEMA, CamelModel, InputModel, NotBlank

KeyName = Annotated[
    str, Field(min_length=1, max_length=100, json_schema_extra=NOT_BLANK_SCHEMA), NotBlank
]


class KeyCreate(InputModel):
    name: KeyName
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))


class KeyOut(CamelModel):
    id: uuid.UUID
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    token: str = Field(description="shown this once; only its hash is stored")
