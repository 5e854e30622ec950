"""Every table, imported in dependency order (for Alembic and the tests)."""

from eventms.access.models import ApiKey
from eventms.attendees.models import Attendee
from eventms.db.base import Base
from eventms.events.models import Event
from eventms.registrations.models import Registration
from eventms.tickets.models import Checkin
from eventms.waitlist.models import WaitlistEntry

__all__ = [
    "ApiKey",
    "Attendee",
    "Base",
    "Checkin",
    "Event",
    "Registration",
    "WaitlistEntry",
]
