"""eventms: an event registration backend (events, attendees, registrations)."""

__version__ = "0.1.0"
