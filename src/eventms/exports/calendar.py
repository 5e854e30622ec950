"""The iCalendar (RFC 5545) feed of upcoming events: one VEVENT each, times in UTC.

Each VEVENT has the UID of the confirmation mail's `.ics` (`notifications.messages.
event_uid`): a calendar subscribed to the feed and one that imported a mailed
invitation hold the same entry, updated in place. DTSTAMP is the event's last
change, so an unchanged event reads the same in every fetch of the feed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from eventms.events.models import Event
from eventms.notifications.messages import TIMED_EVENT_DURATION, event_uid


def events_feed(events: Iterable[Event], *, default_zone: str) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//eventms//events feed//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", "eventms events")
    for event in events:
        entry = icalendar.Event()
        entry.add("uid", event_uid(event.id))
        entry.add("dtstamp", event.updated_at.astimezone(UTC))
        entry.add("last-modified", event.updated_at.astimezone(UTC))
        entry.add("summary", event.name)
        if event.start_time is None:  # all day: a date, which has no time zone
            entry.add("dtstart", event.date)
            entry.add("dtend", event.date + timedelta(days=1))
        else:
            zone = ZoneInfo(event.timezone or default_zone)
            start = datetime.combine(event.date, event.start_time, zone).astimezone(UTC)
            entry.add("dtstart", start)
            entry.add("dtend", start + TIMED_EVENT_DURATION)
        if event.location:
            entry.add("location", event.location)
        if event.description:
            entry.add("description", event.description)
        calendar.add_component(entry)
    return calendar.to_ical()
