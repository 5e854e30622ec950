"""The `registrations` table: one row per (event, attendee), cascading from both."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from eventms.attendees.models import Attendee
from eventms.db.base import Base, Timestamped, new_id
from eventms.events.models import Event
from eventms.tickets.codes import PATTERN, new_ticket_code


class Registration(Timestamped, Base):
    __tablename__ = "registrations"
    __table_args__ = (
        UniqueConstraint("event_id", "attendee_id", name="uq_registrations_event_attendee"),
        # The reminder sweep looks only at registrations whose reminder is not queued.
        Index(
            "ix_registrations_reminder_pending",
            "event_id",
            postgresql_where=text("reminder_queued_at IS NULL"),
        ),
        # As PostgreSQL spells it back (tests/test_migrations.py compares the two).
        CheckConstraint(f"ticket_code::text ~ '{PATTERN}'::text", name="ticket_code_format"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), nullable=False
    )
    attendee_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("attendees.id", ondelete="CASCADE"), nullable=False, index=True
    )
    registered_at: Mapped[date] = mapped_column(
        Date, nullable=False, server_default=func.current_date()
    )
    # Mail state, kept by eventms.notifications (see migration 0002).
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminder_queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminder_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminder_rearmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the registration came off the waiting list (migration 0005): when, and
    # the id of the transaction that promoted it (so that it finds what it promoted).
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    promoted_in: Mapped[int | None] = mapped_column(BigInteger)
    # The ticket (see eventms.tickets, migration 0006): made here from `secrets`; the
    # server default covers rows inserted by SQL that names no code.
    ticket_code: Mapped[str] = mapped_column(
        String(20),
        nullable=False,
        unique=True,
        default=new_ticket_code,
        server_default=text("new_ticket_code()"),
    )
    # What the attendee was last told of the event's moves (migration 0008).
    notice_sequence: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    notice_told: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    event: Mapped[Event] = relationship(back_populates="registrations")
    attendee: Mapped[Attendee] = relationship(back_populates="registrations")
