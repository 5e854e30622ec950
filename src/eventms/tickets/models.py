"""The `checkins` table: at most one row per registration (its primary key), which is
what makes a ticket scanned at two doors at once get in once.

`event_id` is copied from the registration by a trigger (never trusted from the
caller), so that the check-in counter of the event can still be decremented when
the registration is deleted with its check-in (the cascade runs after the
registration row is gone).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from eventms.db.base import Base

NONCE_MAX = 100


class Checkin(Base):
    __tablename__ = "checkins"

    registration_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("registrations.id", ondelete="CASCADE"),
        primary_key=True,
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), nullable=False, index=True
    )
    checked_in_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # The scanning client's id for this scan: its retry gets the first answer back.
    nonce: Mapped[str | None] = mapped_column(String(NONCE_MAX))
