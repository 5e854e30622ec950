"""Tickets and check-in: a ticket code per registration (existing rows get one), the
`checkins` table, and the events' `checked_in_count` kept by triggers.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0006"
# Other branches add 0004/0005; the chain is set when they are merged.
down_revision = "0005"
branch_labels = None
depends_on = None

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PATTERN = f"^[{ALPHABET}]{{20}}$"


def upgrade() -> None:
    # The application makes codes with Python's `secrets`; this default gives one to
    # every row inserted by plain SQL (and, as a volatile default, to every existing
    # row when the column is added). Its 20 characters take 5 bits from each of 20
    # bytes of a SHA-256 over two random UUIDs (244 bits from PostgreSQL's strong
    # random source; sha256() and gen_random_uuid() are built in since 11 and 13).
    op.execute(
        f"""
        CREATE FUNCTION new_ticket_code() RETURNS text
        LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
            SELECT string_agg(substr('{ALPHABET}', get_byte(h, i) % 32 + 1, 1), '' ORDER BY i)
              FROM (SELECT sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())))
                   AS s(h),
                   generate_series(0, 19) AS i
        $$
        """
    )
    op.add_column(
        "registrations",
        sa.Column(
            "ticket_code",
            sa.String(20),
            nullable=False,
            server_default=sa.text("new_ticket_code()"),
        ),
    )
    op.create_unique_constraint("uq_registrations_ticket_code", "registrations", ["ticket_code"])
    op.create_check_constraint(
        op.f("ck_registrations_ticket_code_format"), "registrations", f"ticket_code ~ '{PATTERN}'"
    )

    op.add_column(
        "events",
        sa.Column("checked_in_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_check_constraint(
        op.f("ck_events_checked_in_count_non_negative"), "events", "checked_in_count >= 0"
    )

    op.create_table(
        "checkins",
        sa.Column(
            "registration_id",
            UUID(as_uuid=True),
            sa.ForeignKey(
                "registrations.id",
                ondelete="CASCADE",
                name="fk_checkins_registration_id_registrations",
            ),
            nullable=False,
        ),
        sa.Column(
            "event_id",
            UUID(as_uuid=True),
            sa.ForeignKey("events.id", ondelete="CASCADE", name="fk_checkins_event_id_events"),
            nullable=False,
        ),
        sa.Column(
            "checked_in_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("nonce", sa.String(100)),
        sa.PrimaryKeyConstraint("registration_id", name="pk_checkins"),
    )
    op.create_index("ix_checkins_event_id", "checkins", ["event_id"])

    # The check-in's event is the registration's, whatever the inserting SQL says.
    op.execute(
        """
        CREATE FUNCTION checkins_take_event() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            SELECT event_id INTO NEW.event_id FROM registrations WHERE id = NEW.registration_id;
            RETURN NEW;
        END
        $$;
        CREATE TRIGGER checkins_take_event
        BEFORE INSERT ON checkins
        FOR EACH ROW EXECUTE FUNCTION checkins_take_event();
        """
    )
    # The counter follows the rows, including deletes cascading from a registration
    # or an event, as registrations_count_seats does for seats.
    op.execute(
        """
        CREATE FUNCTION checkins_count() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE events SET checked_in_count = checked_in_count + 1
                 WHERE id = NEW.event_id;
                RETURN NEW;
            ELSE
                UPDATE events SET checked_in_count = checked_in_count - 1
                 WHERE id = OLD.event_id;
                RETURN OLD;
            END IF;
        END
        $$;
        CREATE TRIGGER checkins_count
        AFTER INSERT OR DELETE ON checkins
        FOR EACH ROW EXECUTE FUNCTION checkins_count();
        """
    )


def downgrade() -> None:
    op.drop_table("checkins")
    op.execute("DROP FUNCTION IF EXISTS checkins_count()")
    op.execute("DROP FUNCTION IF EXISTS checkins_take_event()")
    op.drop_constraint(op.f("ck_events_checked_in_count_non_negative"), "events")
    op.drop_column("events", "checked_in_count")
    op.drop_constraint(op.f("ck_registrations_ticket_code_format"), "registrations")
    op.drop_constraint("uq_registrations_ticket_code", "registrations")
    op.drop_column("registrations", "ticket_code")
    op.execute("DROP FUNCTION IF EXISTS new_ticket_code()")
