"""Notices when an event moves: the calendar entry's SEQUENCE, and what each attendee
was last told.

- `events.calendar_sequence`: the `SEQUENCE` of the event's calendar entry (whose
  `UID` every mail shares); 0 as confirmed, raised by one on every move (a change of
  date, start time, time zone or location) in the move's own `UPDATE`.
- `registrations.notice_sequence`: the `calendar_sequence` of the last `Event Updated`
  mail this attendee got (0: none yet). An update job sends when it is below the
  event's, and so does nothing when another job already told them the current state:
  this is how several quick moves coalesce into fewer mails without losing the last.
- `registrations.notice_told`: where and when this attendee was last told the event
  takes place (the last notice's, or, set by the first move since, the state their
  confirmation showed): the "before" of the next notice.

Revision ID: 0008
Revises: 0005 (the lead re-chains it at merge)
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column("calendar_sequence", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "registrations",
        sa.Column("notice_sequence", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("registrations", sa.Column("notice_told", JSONB()))


def downgrade() -> None:
    op.drop_column("registrations", "notice_told")
    op.drop_column("registrations", "notice_sequence")
    op.drop_column("events", "calendar_sequence")
