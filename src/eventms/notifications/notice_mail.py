"""The notice mails: `Event Updated` (the event moved) and `Event Canceled` (deleted).

Both carry an `event.ics` with the confirmation's `UID`, so that a calendar updates
or removes the entry the confirmation added instead of adding a second one: the
update with a higher `SEQUENCE`, the cancellation with `METHOD:CANCEL` and
`STATUS:CANCELLED` (RFC 5545/5546).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

UPDATED = "event-updated"
CANCELED = "event-canceled"
SUBJECTS = {UPDATED: "Event Updated", CANCELED: "Event Canceled"}
TO_BE_ANNOUNCED = "to be announced"

_templates = Environment(
    loader=PackageLoader("eventms.notifications", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def calendar_uid(event_id: uuid.UUID) -> str:
    """The `UID` of the event's calendar entry: the one the confirmation's `.ics` has."""
    return f"{event_id}@eventms"


@dataclass(frozen=True)
class Whereabouts:
    """When and where an event takes place: what a move changes."""

    date: date
    start_time: time | None
    timezone: str | None  # None: the default zone
    location: str | None

    def to_json(self) -> dict[str, str | None]:
        return {
            "date": self.date.isoformat(),
            "start_time": self.start_time.isoformat() if self.start_time else None,
            "timezone": self.timezone,
            "location": self.location,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Whereabouts:
        start = value.get("start_time")
        return cls(
            date=date.fromisoformat(value["date"]),
            start_time=time.fromisoformat(start) if start else None,
            timezone=value.get("timezone"),
            location=value.get("location"),
        )

    def when(self, default_zone: str) -> str:
        """`Friday, 15 January 2030`, plus `at 18:30 (Europe/Paris)` when timed."""
        day = f"{self.date:%A}, {self.date.day} {self.date:%B %Y}"
        if self.start_time is None:
            return day
        return f"{day} at {self.start_time:%H:%M} ({self.timezone or default_zone})"

    def where(self) -> str:
        return self.location or TO_BE_ANNOUNCED


@dataclass(frozen=True)
class Change:
    """One line of an update: `When: <old> → <new>`."""

    label: str
    old: str
    new: str


def what_changed(before: Whereabouts, after: Whereabouts, *, default_zone: str) -> list[Change]:
    """The changes an attendee who was told `before` sees, in words (none: nothing
    they would notice, e.g. a zone named that is the default one)."""
    changes = []
    old_when, new_when = before.when(default_zone), after.when(default_zone)
    if old_when != new_when:
        changes.append(Change("When", old_when, new_when))
    if before.where() != after.where():
        changes.append(Change("Where", before.where(), after.where()))
    return changes


@dataclass(frozen=True)
class UpdateFacts:
    """What an `Event Updated` mail about one registration says, read in one query."""

    registration_id: uuid.UUID
    attendee_name: str
    attendee_email: str
    event_id: uuid.UUID
    event_name: str
    now: Whereabouts
    calendar_sequence: int
    notice_sequence: int
    # What the attendee was last told; None only if no move ever recorded it.
    told: Whereabouts | None


@dataclass(frozen=True)
class CancelNotice:
    """Everything an `Event Canceled` mail says: the event's rows are gone when it is
    sent, so the job carries it all (`to_args` / `from_args`)."""

    recipient_id: uuid.UUID  # the registration or the waiting-list entry
    waiting: bool
    attendee_name: str
    attendee_email: str
    event_id: uuid.UUID
    event_name: str
    whereabouts: Whereabouts
    calendar_sequence: int  # the cancellation's own: one above the event's last

    def to_args(self) -> dict[str, Any]:
        return {
            "recipient_id": str(self.recipient_id),
            "waiting": self.waiting,
            "name": self.attendee_name,
            "email": self.attendee_email,
            "event_id": str(self.event_id),
            "event_name": self.event_name,
            "whereabouts": self.whereabouts.to_json(),
            "uid": calendar_uid(self.event_id),
            "sequence": self.calendar_sequence,
        }

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> CancelNotice:
        return cls(
            recipient_id=uuid.UUID(args["recipient_id"]),
            waiting=bool(args["waiting"]),
            attendee_name=args["name"],
            attendee_email=args["email"],
            event_id=uuid.UUID(args["event_id"]),
            event_name=args["event_name"],
            whereabouts=Whereabouts.from_json(args["whereabouts"]),
            calendar_sequence=int(args["sequence"]),
        )


def notice_calendar(
    *,
    event_id: uuid.UUID,
    name: str,
    whereabouts: Whereabouts,
    sequence: int,
    stamp: datetime,
    default_zone: str,
    canceled: bool = False,
) -> bytes:
    """The event's VEVENT as the confirmation has it, at `sequence`; canceled or not."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//eventms//registration//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if canceled else "PUBLISH")
    event = icalendar.Event()
    event.add("uid", calendar_uid(event_id))
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("summary", name)
    if whereabouts.start_time is None:
        event.add("dtstart", whereabouts.date)
        event.add("dtend", whereabouts.date + timedelta(days=1))
    else:
        zone = ZoneInfo(whereabouts.timezone or default_zone)
        event.add("dtstart", datetime.combine(whereabouts.date, whereabouts.start_time, zone))
        event.add("duration", timedelta(hours=1))
    if whereabouts.location:
        event.add("location", whereabouts.location)
    event.add("status", "CANCELLED" if canceled else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical()


def _message(
    kind: str, *, sender: str, name: str, email: str, message_id: str, context: dict[str, Any]
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = SUBJECTS[kind]
    message["From"] = sender
    message["To"] = formataddr((name, email))
    # Stable per notice: a duplicate delivery after a crash carries the same id,
    # which mail clients collapse.
    message["Message-ID"] = f"<{kind}.{message_id}@eventms>"
    message.set_content(_templates.get_template(f"{kind}.txt").render(context))
    message.add_alternative(_templates.get_template(f"{kind}.html").render(context), subtype="html")
    return message


def build_update_message(
    facts: UpdateFacts,
    changes: list[Change],
    *,
    sender: str,
    now: datetime,
    manage_url: str,
    default_zone: str,
) -> EmailMessage:
    """The `Event Updated` mail: what changed, the event as it is now, and its `.ics`."""
    context = {
        "name": facts.attendee_name,
        "event_name": facts.event_name,
        "changes": changes,
        "when": facts.now.when(default_zone),
        "where": facts.now.where(),
        "manage_url": manage_url,
    }
    message = _message(
        UPDATED,
        sender=sender,
        name=facts.attendee_name,
        email=facts.attendee_email,
        message_id=f"{facts.registration_id.hex}.{facts.calendar_sequence}",
        context=context,
    )
    ics = notice_calendar(
        event_id=facts.event_id,
        name=facts.event_name,
        whereabouts=facts.now,
        sequence=facts.calendar_sequence,
        stamp=now,
        default_zone=default_zone,
    )
    message.add_attachment(
        ics, maintype="text", subtype="calendar", filename="event.ics", params={"method": "PUBLISH"}
    )
    return message


def build_cancel_message(
    notice: CancelNotice, *, sender: str, now: datetime, default_zone: str
) -> EmailMessage:
    """The `Event Canceled` mail, with the `.ics` that removes the calendar entry."""
    context = {
        "name": notice.attendee_name,
        "event_name": notice.event_name,
        "waiting": notice.waiting,
        "when": notice.whereabouts.when(default_zone),
        "where": notice.whereabouts.where(),
    }
    message = _message(
        CANCELED,
        sender=sender,
        name=notice.attendee_name,
        email=notice.attendee_email,
        message_id=notice.recipient_id.hex,
        context=context,
    )
    ics = notice_calendar(
        event_id=notice.event_id,
        name=notice.event_name,
        whereabouts=notice.whereabouts,
        sequence=notice.calendar_sequence,
        stamp=now,
        default_zone=default_zone,
        canceled=True,
    )
    message.add_attachment(
        ics, maintype="text", subtype="calendar", filename="event.ics", params={"method": "CANCEL"}
    )
    return message
