"""The `events` table.

`registered_count` is kept equal to the event's registrations by triggers on
`registrations` (see the initial migration), `checked_in_count` to its check-ins by
triggers on `checkins` (migration 0006), and `CHECK (registered_count <=
max_attendees)` makes overbooking impossible whatever path writes the rows.
`waitlist_count` likewise follows `waitlist_entries` (migration 0005, which also
says how no event keeps a free seat while someone waits).
"""

from __future__ import annotations

import uuid
from datetime import date, time
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Date, Integer, String, Text, Time, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from eventms.db.base import Base, Timestamped, new_id

if TYPE_CHECKING:
    from eventms.registrations.models import Registration


class Event(Timestamped, Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("location", "date", name="uq_events_location_date"),
        CheckConstraint("max_attendees >= 1", name="max_attendees_positive"),
        CheckConstraint("registered_count >= 0", name="registered_count_non_negative"),
        CheckConstraint("registered_count <= max_attendees", name="capacity"),
        CheckConstraint("waitlist_count >= 0", name="waitlist_count_non_negative"),
        CheckConstraint("checked_in_count >= 0", name="checked_in_count_non_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    date: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    location: Mapped[str | None] = mapped_column(String(255))
    max_attendees: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    registered_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    start_time: Mapped[time | None] = mapped_column(Time)
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Kept equal to the event's waiting-list entries by triggers (migration 0005).
    waitlist_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Kept equal to the event's rows in `checkins` by triggers (migration 0006).
    checked_in_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # The SEQUENCE of the event's calendar entry: raised by every move (migration 0008).
    calendar_sequence: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    registrations: Mapped[list[Registration]] = relationship(
        back_populates="event",
        passive_deletes=True,
        order_by="Registration.created_at",
    )

    @property
    def available_seats(self) -> int:
        return self.max_attendees - self.registered_count
