"""The `attendees` table: email unique case-insensitively (`lower(email)` index)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import Index, String, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from eventms.db.base import Base, Timestamped, new_id

if TYPE_CHECKING:
    from eventms.registrations.models import Registration


class Attendee(Timestamped, Base):
    __tablename__ = "attendees"
    __table_args__ = (
        # Email is unique whatever its case: A@x.io and a@x.io are one person.
        Index("uq_attendees_email_lower", text("lower(email)"), unique=True),
        Index("ix_attendees_name_email", "name", "email"),
        # Substring search, on either column or both (one index: a search of both
        # intersects inside it). Migrations 0001 and 0009 create it only where
        # pg_trgm is available; `requires_extension` tells the schema comparison
        # (eventms.migrations.compare) to expect it only there.
        Index(
            "ix_attendees_search_trgm",
            "name",
            "email",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops", "email": "gin_trgm_ops"},
            info={"requires_extension": "pg_trgm"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    email: Mapped[str] = mapped_column(String(100), nullable=False)

    registrations: Mapped[list[Registration]] = relationship(
        back_populates="attendee",
        passive_deletes=True,
        order_by="Registration.created_at",
    )
