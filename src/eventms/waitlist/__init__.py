"""Waiting list: attendees in line for a full event, promoted as seats free up."""
