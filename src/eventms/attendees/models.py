"""The `attendees` table: email unique case-insensitively (`lower(email)` index)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from eventms.db.base import Base, Timestamped, new_id

if TYPE_CHECKING:
    from eventms.registrations.models import Registration


class Attendee(Timestamped, Base):
    __tablename__ = "attendees"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    email: Mapped[str] = mapped_column(String(100), nullable=False)

    registrations: Mapped[list[Registration]] = relationship(
        back_populates="attendee",
        passive_deletes=True,
        order_by="Registration.created_at",
    )
