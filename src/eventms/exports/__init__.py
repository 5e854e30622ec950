"""Exports and calendars (PRODUCT.md, "Exports and calendars").

- `attendees_csv`: an event's attendees as CSV, streamed from a server-side cursor;
- `calendar`: the iCalendar feed of upcoming events;
- `service`, `router`: `/event/{id}/attendees.csv` and `/events.ics`.
"""
