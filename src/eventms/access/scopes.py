"""The scopes an API key may carry (PRODUCT.md's table)."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    EVENTS_WRITE = "events:write"  # create, change and delete events
    ATTENDEES_READ = "attendees:read"  # attendees, events in their full view, exports
    ATTENDEES_WRITE = "attendees:write"  # create, change and delete attendees
    REGISTRATIONS_READ = "registrations:read"  # registrations and waiting lists
    REGISTRATIONS_WRITE = "registrations:write"  # register, cancel, waiting lists
    CHECKIN = "checkin"  # check tickets in and out; names, never emails
    WEBHOOKS = "webhooks"  # webhook endpoints and their deliveries
    ADMIN = "admin"  # all of the above, and API keys


def allows(granted: frozenset[str], wanted: Scope) -> bool:
    return wanted in granted or Scope.ADMIN in granted
