"""Waiting list: entries in order, their count on events, promotion in the freeing
transaction, and the invariant checked by PostgreSQL at every commit.

How "after every commit no event has both a free seat and a waiting entry, and none
is over capacity" holds:

- Every change to an event's seats or to its waiting list first locks the event row:
  a registration and a cancellation by the seat counter's `UPDATE events` (0001), a
  capacity change by its own `UPDATE`, and joining or leaving the list by the
  `waitlist_count` counter's `UPDATE events` below, taken *before* the entry is
  inserted. So, per event, these writes run one at a time, and each one reads the
  others' committed rows (READ COMMITTED: every statement of a trigger function takes
  a fresh snapshot once the lock is granted).
- Joining (`waitlist_entries_join`, BEFORE INSERT) refuses, under that lock, an
  attendee who holds a seat and an event with a free seat, and only then draws the
  entry's `seq` (its place in line): the order is the order in which joins got the lock.
- Freeing seats promotes under that lock, in the same statement: the seat counter's
  delete branch (a cancellation, or the cascade of an attendee's deletion) and the
  capacity trigger (`events_promote_waitlist`) insert registrations for the earliest
  entries, as many as there are free seats; inserting a registration removes its
  attendee's entry (`registrations_count_seats`, insert branch).
- Over capacity: the `capacity` CHECK of 0001, checked at every row change.
- No free seat while someone waits: a constraint trigger deferred to the commit
  (`events_no_free_seat_while_waiting`); promotion passes through a free seat
  for a moment (the canceled seat is given back, then taken by the promoted
  attendee), which an immediate CHECK would refuse. It fires only for a row change
  that leaves both a free seat and a waiting entry, and re-reads the row at commit.

A promoted registration carries `promoted_at` (its confirmation says it came off the
waiting list) and `promoted_in` (the promoting transaction's id), so that the service
that freed the seats finds what it promoted and defers their mail in that transaction.

Revision ID: 0005
Revises: 0003 (the lead re-chains it after 0004 at merge)
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column("waitlist_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_check_constraint("waitlist_count_non_negative", "events", "waitlist_count >= 0")
    op.add_column("registrations", sa.Column("promoted_at", sa.DateTime(timezone=True)))
    op.add_column("registrations", sa.Column("promoted_in", sa.BigInteger()))

    op.execute("CREATE SEQUENCE waitlist_entries_seq AS bigint")
    op.create_table(
        "waitlist_entries",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "event_id",
            UUID(as_uuid=True),
            sa.ForeignKey(
                "events.id", ondelete="CASCADE", name="fk_waitlist_entries_event_id_events"
            ),
            nullable=False,
        ),
        sa.Column(
            "attendee_id",
            UUID(as_uuid=True),
            sa.ForeignKey(
                "attendees.id",
                ondelete="CASCADE",
                name="fk_waitlist_entries_attendee_id_attendees",
            ),
            nullable=False,
        ),
        # Drawn by the join trigger under the event row lock (not a column default,
        # which is drawn before the lock): the order in line.
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.UniqueConstraint("event_id", "attendee_id", name="uq_waitlist_entries_event_attendee"),
    )
    op.create_index("ix_waitlist_entries_event_order", "waitlist_entries", ["event_id", "seq"])
    op.create_index("ix_waitlist_entries_attendee_id", "waitlist_entries", ["attendee_id"])

    # Joining: lock the event row (the counter's UPDATE), refuse under the lock, then
    # take a place in line.
    op.execute(
        """
        CREATE FUNCTION waitlist_entries_join() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            taken integer;
            seats integer;
        BEGIN
            -- The attendee's row before the event's, as a registration's foreign-key
            -- check does (no lock-order deadlock with an attendee's deletion). An
            -- unknown attendee or event is refused as its foreign key would, whatever
            -- the seats.
            PERFORM 1 FROM attendees WHERE id = NEW.attendee_id FOR KEY SHARE;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no attendee %', NEW.attendee_id
                      USING ERRCODE = 'foreign_key_violation',
                            CONSTRAINT = 'fk_waitlist_entries_attendee_id_attendees';
            END IF;
            UPDATE events SET waitlist_count = waitlist_count + 1
             WHERE id = NEW.event_id
            RETURNING registered_count, max_attendees INTO taken, seats;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no event %', NEW.event_id
                      USING ERRCODE = 'foreign_key_violation',
                            CONSTRAINT = 'fk_waitlist_entries_event_id_events';
            END IF;
            IF EXISTS (SELECT 1 FROM registrations
                        WHERE event_id = NEW.event_id AND attendee_id = NEW.attendee_id) THEN
                RAISE EXCEPTION 'attendee % is registered for event %',
                                NEW.attendee_id, NEW.event_id
                      USING ERRCODE = 'check_violation',
                            CONSTRAINT = 'waitlist_entries_not_registered';
            END IF;
            IF taken < seats THEN
                RAISE EXCEPTION 'event % has free seats', NEW.event_id
                      USING ERRCODE = 'check_violation',
                            CONSTRAINT = 'waitlist_entries_event_full';
            END IF;
            NEW.seq := nextval('waitlist_entries_seq');
            RETURN NEW;
        END
        $$;
        """
    )
    op.execute(
        """
        CREATE TRIGGER waitlist_entries_join
        BEFORE INSERT ON waitlist_entries
        FOR EACH ROW EXECUTE FUNCTION waitlist_entries_join()
        """
    )
    # Leaving (removed, promoted, or cascaded from the attendee; from the event: the
    # row is gone and the UPDATE finds nothing).
    op.execute(
        """
        CREATE FUNCTION waitlist_entries_leave() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE events SET waitlist_count = waitlist_count - 1 WHERE id = OLD.event_id;
            RETURN OLD;
        END
        $$;
        """
    )
    op.execute(
        """
        CREATE TRIGGER waitlist_entries_leave
        AFTER DELETE ON waitlist_entries
        FOR EACH ROW EXECUTE FUNCTION waitlist_entries_leave()
        """
    )

    # Promotion: the earliest entries of the event become registrations, at most
    # `seats` of them. The caller holds the event row lock. Each inserted registration
    # fires the seat counter (one seat taken, its entry removed).
    op.execute(
        """
        CREATE FUNCTION waitlist_promote(event uuid, seats integer) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            IF seats <= 0 THEN
                RETURN;
            END IF;
            INSERT INTO registrations (id, event_id, attendee_id, promoted_at, promoted_in)
            SELECT gen_random_uuid(), w.event_id, w.attendee_id, now(),
                   pg_current_xact_id()::text::bigint
              FROM waitlist_entries w
             WHERE w.event_id = event
             ORDER BY w.seq
             LIMIT seats;
        END
        $$;
        """
    )
    # The seat counter of 0001, now also: a registration removes its attendee's
    # entry; a freed seat goes to the head of the line.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION registrations_count_seats() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            free integer;
            waiting integer;
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE events SET registered_count = registered_count + 1
                 WHERE id = NEW.event_id;
                DELETE FROM waitlist_entries
                 WHERE event_id = NEW.event_id AND attendee_id = NEW.attendee_id;
                RETURN NEW;
            ELSE
                UPDATE events SET registered_count = registered_count - 1
                 WHERE id = OLD.event_id
                RETURNING max_attendees - registered_count, waitlist_count
                     INTO free, waiting;
                IF FOUND AND waiting > 0 THEN
                    PERFORM waitlist_promote(OLD.event_id, free);
                END IF;
                RETURN OLD;
            END IF;
        END
        $$;
        """
    )
    # More seats: promote into them (the UPDATE that raised the capacity holds the lock).
    op.execute(
        """
        CREATE FUNCTION events_promote_waitlist() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM waitlist_promote(NEW.id, NEW.max_attendees - NEW.registered_count);
            RETURN NEW;
        END
        $$;
        """
    )
    op.execute(
        """
        CREATE TRIGGER events_promote_waitlist
        AFTER UPDATE OF max_attendees ON events
        FOR EACH ROW
        WHEN (NEW.max_attendees > OLD.max_attendees AND NEW.waitlist_count > 0)
        EXECUTE FUNCTION events_promote_waitlist()
        """
    )

    # The invariant, checked at commit for every event a transaction left (at some
    # point) with a free seat and a waiting entry: the row as it is at commit.
    op.execute(
        """
        CREATE FUNCTION events_no_free_seat_while_waiting() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM events
                        WHERE id = NEW.id AND waitlist_count > 0
                          AND registered_count < max_attendees) THEN
                RAISE EXCEPTION 'event % has a free seat and a waiting list', NEW.id
                      USING ERRCODE = 'check_violation',
                            CONSTRAINT = 'events_no_free_seat_while_waiting';
            END IF;
            RETURN NULL;
        END
        $$;
        """
    )
    op.execute(
        """
        CREATE CONSTRAINT TRIGGER events_no_free_seat_while_waiting
        AFTER INSERT OR UPDATE ON events
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW
        WHEN (NEW.waitlist_count > 0 AND NEW.registered_count < NEW.max_attendees)
        EXECUTE FUNCTION events_no_free_seat_while_waiting()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS events_no_free_seat_while_waiting ON events")
    op.execute("DROP FUNCTION IF EXISTS events_no_free_seat_while_waiting()")
    op.execute("DROP TRIGGER IF EXISTS events_promote_waitlist ON events")
    op.execute("DROP FUNCTION IF EXISTS events_promote_waitlist()")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION registrations_count_seats() RETURNS trigger
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
    op.execute("DROP FUNCTION IF EXISTS waitlist_promote(uuid, integer)")
    op.drop_table("waitlist_entries")
    op.execute("DROP FUNCTION IF EXISTS waitlist_entries_join()")
    op.execute("DROP FUNCTION IF EXISTS waitlist_entries_leave()")
    op.execute("DROP SEQUENCE IF EXISTS waitlist_entries_seq")
    op.drop_column("registrations", "promoted_in")
    op.drop_column("registrations", "promoted_at")
    op.drop_constraint("ck_events_waitlist_count_non_negative", "events", type_="check")
    op.drop_column("events", "waitlist_count")
