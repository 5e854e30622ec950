"""Attendee self-service: anonymous signup and the mailed manage link."""
