"""The mails themselves: Jinja2 templates (HTML + plain text) and the `.ics` invitation.

Templates live in `templates/`, one pair per mail (`<name>.html`, `<name>.txt`).
HTML is autoescaped, so an attendee named `<script>` is shown as text; the plain
text part is not HTML and is not escaped.
"""

from __future__ import annotations

import email.policy
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email import message_from_bytes
from email.headerregistry import Address
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import icalendar
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from eventms.tickets.codes import grouped
from eventms.tickets.qr import ticket_qr_png

CONFIRMATION = "registration-confirmation"
REMINDER = "event-reminder"
SUBJECTS = {CONFIRMATION: "Registration Confirmation", REMINDER: "Event Reminder"}

_templates = Environment(
    loader=PackageLoader("eventms.notifications", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class MailFacts:
    """What a mail about one registration says, read in one query."""

    registration_id: uuid.UUID
    attendee_name: str
    attendee_email: str
    event_id: uuid.UUID
    event_name: str
    event_description: str | None
    event_date: date
    event_location: str | None
    start_time: time | None
    timezone: str
    starts_at: datetime
    confirmation_sent_at: datetime | None
    reminder_sent_at: datetime | None
    # The seat came to them off the waiting list (the confirmation says so).
    from_waitlist: bool = False
    ticket_code: str = ""  # bare (eventms.tickets.codes); shown grouped

    @property
    def when(self) -> str:
        """`Friday, 15 January 2030`, plus `at 18:30 (Europe/Paris)` when timed."""
        day = f"{self.event_date:%A}, {self.event_date.day} {self.event_date:%B %Y}"
        if self.start_time is None:
            return day
        return f"{day} at {self.start_time:%H:%M} ({self.timezone})"


# Control characters, line and paragraph separators, lone surrogates: never in a header.
_UNSAFE_IN_HEADER = {"Cc", "Zl", "Zp", "Cs"}


def recipient(name: str, address: str) -> Address:
    """The `To` address, with the attendee's name as its display name when that name
    can be carried safely: no control characters or line separators (rows stored
    before names were checked may hold them), and it reads back as it was written
    (no `=?...?=` that a mail client would decode into something else). Otherwise
    the address alone: the mail still reaches them, it greets them in its body."""
    bare = Address(addr_spec=address)  # an address that is not one: cannot be built
    name = name.replace("\t", " ")  # whitespace in a header either way
    if not name.strip() or any(unicodedata.category(c) in _UNSAFE_IN_HEADER for c in name):
        return bare
    try:
        named = Address(display_name=name, addr_spec=address)
        probe = EmailMessage()
        probe["To"] = named
        parsed = message_from_bytes(probe.as_bytes(), policy=email.policy.default)
        back = parsed["To"].addresses
    except (ValueError, TypeError, IndexError, AttributeError):
        return bare
    if len(back) != 1 or (back[0].display_name, back[0].addr_spec) != (name, bare.addr_spec):
        return bare
    return named


# How long a timed event lasts in a calendar (events have a start, not an end).
TIMED_EVENT_DURATION = timedelta(hours=1)


def event_uid(event_id: uuid.UUID) -> str:
    """The iCalendar UID of an event, in every `.ics` eventms makes (the mails' and the
    feed's), so that a calendar holds one entry per event, however it heard of it."""
    return f"{event_id}@eventms"


def calendar_invitation(facts: MailFacts, *, stamp: datetime) -> bytes:
    """An iCalendar (RFC 5545) VEVENT for the event: all-day when it has no start time."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//eventms//registration//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", event_uid(facts.event_id))
    event.add("dtstamp", stamp)
    event.add("summary", facts.event_name)
    if facts.start_time is None:
        event.add("dtstart", facts.event_date)
        event.add("dtend", facts.event_date + timedelta(days=1))
    else:
        start = datetime.combine(facts.event_date, facts.start_time, ZoneInfo(facts.timezone))
        event.add("dtstart", start)
        event.add("duration", TIMED_EVENT_DURATION)
    if facts.event_location:
        event.add("location", facts.event_location)
    if facts.event_description:
        event.add("description", facts.event_description)
    calendar.add_component(event)
    return calendar.to_ical()


def build_message(
    kind: str, facts: MailFacts, *, sender: str, now: datetime, manage_url: str
) -> EmailMessage:
    """The multipart mail `kind` (CONFIRMATION or REMINDER) about `facts`, with the
    attendee's `manage_url` (where they see and cancel their registration)."""
    # The ticket's QR code travels inside the mail (a `cid:` part related to the HTML),
    # not as a link: nothing to fetch, nothing for a mail client to block.
    ticket_cid = f"ticket.{facts.registration_id.hex}@eventms"
    context = {
        "facts": facts,
        "when": facts.when,
        "manage_url": manage_url,
        "ticket": grouped(facts.ticket_code),
        "ticket_cid": ticket_cid,
    }
    message = EmailMessage()
    message["Subject"] = SUBJECTS[kind]
    message["From"] = sender
    message["To"] = recipient(facts.attendee_name, facts.attendee_email)
    # Stable per registration (and per start, for reminders): a duplicate delivery
    # after a crash carries the same id, which mail clients collapse.
    tag = facts.registration_id.hex
    if kind == REMINDER:
        tag += f".{int(facts.starts_at.timestamp())}"
    message["Message-ID"] = f"<{kind}.{tag}@eventms>"
    message.set_content(_templates.get_template(f"{kind}.txt").render(context))
    message.add_alternative(_templates.get_template(f"{kind}.html").render(context), subtype="html")
    if kind == CONFIRMATION and facts.ticket_code:
        html = message.get_body(preferencelist=("html",))
        assert html is not None
        html.add_related(
            ticket_qr_png(facts.ticket_code),
            maintype="image",
            subtype="png",
            cid=f"<{ticket_cid}>",
            filename="ticket.png",
            disposition="inline",
        )
    if kind == CONFIRMATION:
        message.add_attachment(
            calendar_invitation(facts, stamp=now),
            maintype="text",
            subtype="calendar",
            filename="event.ics",
            params={"method": "PUBLISH"},
        )
    return message
