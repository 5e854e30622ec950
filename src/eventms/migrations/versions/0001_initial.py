"""Initial schema: events, attendees, registrations, seat counter triggers, search indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMPS = (
    sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
)


def _timestamps() -> list[sa.Column]:
    return [c.copy() for c in TIMESTAMPS]


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("location", sa.String(255)),
        sa.Column("max_attendees", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("registered_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("start_time", sa.Time()),
        sa.Column("timezone", sa.String(64)),
        *_timestamps(),
        sa.UniqueConstraint("location", "date", name="uq_events_location_date"),
        sa.CheckConstraint("max_attendees >= 1", name="max_attendees_positive"),
        sa.CheckConstraint("registered_count >= 0", name="registered_count_non_negative"),
        sa.CheckConstraint("registered_count <= max_attendees", name="capacity"),
    )
    op.create_index("ix_events_date", "events", ["date"])

    op.create_table(
        "attendees",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(100), nullable=False),
        *_timestamps(),
    )
    # Email is unique whatever its case: A@x.io and a@x.io are one person.
    op.execute("CREATE UNIQUE INDEX uq_attendees_email_lower ON attendees (lower(email))")

    op.create_table(
        "registrations",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "event_id",
            UUID(as_uuid=True),
            sa.ForeignKey("events.id", ondelete="CASCADE", name="fk_registrations_event_id_events"),
            nullable=False,
        ),
        sa.Column(
            "attendee_id",
            UUID(as_uuid=True),
            sa.ForeignKey(
                "attendees.id", ondelete="CASCADE", name="fk_registrations_attendee_id_attendees"
            ),
            nullable=False,
        ),
        sa.Column(
            "registered_at", sa.Date(), server_default=sa.func.current_date(), nullable=False
        ),
        *_timestamps(),
        sa.UniqueConstraint("event_id", "attendee_id", name="uq_registrations_event_attendee"),
    )
    op.create_index("ix_registrations_attendee_id", "registrations", ["attendee_id"])

    # The seat counter follows the rows, whichever path inserts or deletes them
    # (including ON DELETE CASCADE from an attendee). The UPDATE locks the event row,
    # so racing registrations queue there and the CHECK on events refuses the one
    # that would overbook.
    op.execute(
        """
        CREATE FUNCTION registrations_count_seats() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE events SET registered_count = registered_count + 1
                 WHERE id = NEW.event_id;
                RETURN NEW;
            ELSE
                UPDATE events SET registered_count = registered_count - 1
                 WHERE id = OLD.event_id;
                RETURN OLD;
            END IF;
        END
        $$;
        """
    )
    op.execute(
        """
        CREATE TRIGGER registrations_count_seats
        AFTER INSERT OR DELETE ON registrations
        FOR EACH ROW EXECUTE FUNCTION registrations_count_seats()
        """
    )

    # Substring search on name and email: trigram GIN indexes where pg_trgm exists
    # (any packaged PostgreSQL); the embedded pgserver build lacks it and falls back
    # to a sequential scan, which is fine at its scale.
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
                CREATE EXTENSION IF NOT EXISTS pg_trgm;
                CREATE INDEX ix_attendees_name_trgm ON attendees USING gin (name gin_trgm_ops);
                CREATE INDEX ix_attendees_email_trgm ON attendees USING gin (email gin_trgm_ops);
            ELSE
                RAISE NOTICE 'pg_trgm not available: attendee search runs without trigram indexes';
            END IF;
        END
        $$;
        """
    )
    op.create_index("ix_attendees_name_email", "attendees", ["name", "email"])


def downgrade() -> None:
    op.drop_table("registrations")
    op.execute("DROP FUNCTION IF EXISTS registrations_count_seats()")
    op.drop_table("attendees")
    op.drop_table("events")
