"""Registrations: an attendee's seat at an event."""
