"""Every table, imported in dependency order (for Alembic and the tests)."""

from eventms.access.models import ApiKey
from eventms.attendees.models import Attendee
from eventms.db.base import Base
from eventms.events.models import Event
from eventms.idempotency.models import IdempotencyKey
from eventms.registrations.models import Registration
from eventms.tickets.models import Checkin
from eventms.waitlist.models import WaitlistEntry
from eventms.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "Attendee",
    "Base",
    "Checkin",
    "Event",
    "IdempotencyKey",
    "Registration",
    "WaitlistEntry",
    "WebhookDelivery",
    "WebhookEndpoint",
]
