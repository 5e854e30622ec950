"""Mail: procrastinate's job queue, and the mail state of each registration.

procrastinate keeps its jobs in PostgreSQL tables next to ours. Its schema is applied
here, inside Alembic's transaction, so that `eventms migrate` (and `serve`, which runs
it) is the one command that prepares a database. The step is idempotent: it is
skipped when `procrastinate_jobs` already exists (a database where someone ran
`procrastinate schema --apply` by hand). A later procrastinate release that changes
its schema ships SQL migrations (procrastinate/sql/migrations); they get an Alembic
revision of their own that runs them, like this one.

The registration row holds the mail state, so the sweep can find what is due with
SQL and mark it in the same transaction that defers its job:
- `confirmation_sent_at`: set by the confirmation job once the SMTP server took it;
- `reminder_queued_at`: set by the reminder sweep when it defers the reminder job
  (a row is swept once, whatever the number of workers);
- `reminder_sent_at`: set by the reminder job once sent;
- `reminder_rearmed_at`: set when the event moved (see the trigger below).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from importlib import resources

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_MAIL_COLUMNS = (
    "confirmation_sent_at",
    "reminder_queued_at",
    "reminder_sent_at",
    "reminder_rearmed_at",
)


def _apply_procrastinate_schema() -> None:
    connection = op.get_bind()
    exists = connection.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar()
    if exists is not None:
        return
    schema = (resources.files("procrastinate.sql") / "schema.sql").read_text(encoding="utf-8")
    # Through the raw psycopg connection, on Alembic's transaction: psycopg sends a
    # query without parameters as it is (no `%` or `:name` interpretation).
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute(schema)


def upgrade() -> None:
    _apply_procrastinate_schema()
    for column in _MAIL_COLUMNS:
        op.add_column("registrations", sa.Column(column, sa.DateTime(timezone=True)))
    # The sweep looks only at registrations whose reminder is not queued yet.
    op.create_index(
        "ix_registrations_reminder_pending",
        "registrations",
        ["event_id"],
        postgresql_where=sa.text("reminder_queued_at IS NULL"),
    )
    # Moving an event (another date, start time or zone) re-arms its reminders,
    # whatever path updates the row. A reminder job already queued for the old time
    # sees the start it was made for no longer holds, and drops itself.
    op.execute(
        """
        CREATE FUNCTION events_rearm_reminders() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE registrations
               SET reminder_queued_at = NULL,
                   reminder_sent_at = NULL,
                   reminder_rearmed_at = now()
             WHERE event_id = NEW.id;
            RETURN NEW;
        END
        $$;
        """
    )
    op.execute(
        """
        CREATE TRIGGER events_rearm_reminders
        AFTER UPDATE OF date, start_time, timezone ON events
        FOR EACH ROW
        WHEN (OLD.date IS DISTINCT FROM NEW.date
              OR OLD.start_time IS DISTINCT FROM NEW.start_time
              OR OLD.timezone IS DISTINCT FROM NEW.timezone)
        EXECUTE FUNCTION events_rearm_reminders()
        """
    )


def downgrade() -> None:
    # procrastinate's tables stay: they may hold job history an operator still wants,
    # and re-running 0002 skips the schema when it is there.
    op.execute("DROP TRIGGER IF EXISTS events_rearm_reminders ON events")
    op.execute("DROP FUNCTION IF EXISTS events_rearm_reminders()")
    op.drop_index("ix_registrations_reminder_pending", table_name="registrations")
    for column in _MAIL_COLUMNS:
        op.drop_column("registrations", column)
