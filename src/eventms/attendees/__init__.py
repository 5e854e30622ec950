"""Attendees: the table, schemas, rules and routes."""
