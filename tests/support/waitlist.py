"""Waiting-list test support: the contract's messages and the invariant check."""

from __future__ import annotations

from typing import Any

import psycopg

SEATS_FREE = "The event has free seats: register instead"
ALREADY_REGISTERED = "You are already registered for this event"
ALREADY_WAITING = "You are already on the waiting list for this event"


def invariant_violations(db: psycopg.Connection) -> list[Any]:
    """Events with a free seat and someone waiting, over capacity, or miscounted."""
    return db.execute(
        """
        SELECT e.id FROM events e
         WHERE e.registered_count > e.max_attendees
            OR (e.registered_count < e.max_attendees
                AND EXISTS (SELECT 1 FROM waitlist_entries w WHERE w.event_id = e.id))
            OR e.registered_count <> (SELECT count(*) FROM registrations r WHERE r.event_id = e.id)
            OR e.waitlist_count <> (SELECT count(*) FROM waitlist_entries w WHERE w.event_id = e.id)
        """
    ).fetchall()
