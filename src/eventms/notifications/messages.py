"""The mails themselves: Jinja2 templates (HTML + plain text) and the `.ics` invitation.

Templates live in `templates/`, one pair per mail (`<name>.html`, `<name>.txt`).
HTML is autoescaped, so an attendee named `<script>` is shown as text; the plain
text part is not HTML and is not escaped.
"""

from __future__ import annotations

import email.policy
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email import message_from_bytes
from email.charset import QP, Charset
from email.encoders import encode_base64
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from functools import lru_cache
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
# Most names: ASCII words joined by single spaces, dots, apostrophes or hyphens. Such a
# name reads back as written without trying (the try costs a message built and parsed).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9]+(?:[ .'-][A-Za-z0-9]+)*\.?")


def recipient(name: str, address: str) -> Address:
    """The `To` address, with the attendee's name as its display name when that name
    can be carried safely: no control characters or line separators (rows stored
    before names were checked may hold them), and it reads back as it was written
    (no `=?...?=` that a mail client would decode into something else). Otherwise
    the address alone: the mail still reaches them, it greets them in its body."""
    bare = Address(addr_spec=address)  # an address that is not one: cannot be built
    name = name.replace("\t", " ")  # whitespace in a header either way
    if _PLAIN_NAME.fullmatch(name) and address.isascii():
        return Address(display_name=name, addr_spec=address)  # reads back as written
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
    """An iCalendar (RFC 5545) VEVENT for the event: all-day when it has no start time.

    Its DTSTAMP counts whole seconds: the mails of one event made within a second
    carry the same bytes, made once (a burst of registrations fills one event)."""
    return _invitation(
        facts.event_id,
        facts.event_name,
        facts.event_description,
        facts.event_date,
        facts.event_location,
        facts.start_time,
        facts.timezone,
        stamp.replace(microsecond=0),
    )


@lru_cache(maxsize=64)
def _invitation(
    event_id: uuid.UUID,
    name: str,
    description: str | None,
    day: date,
    location: str | None,
    start_time: time | None,
    zone: str,
    stamp: datetime,
) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//eventms//registration//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", event_uid(event_id))
    event.add("dtstamp", stamp)
    event.add("summary", name)
    if start_time is None:
        event.add("dtstart", day)
        event.add("dtend", day + timedelta(days=1))
    else:
        start = datetime.combine(day, start_time, ZoneInfo(zone))
        event.add("dtstart", start)
        event.add("duration", TIMED_EVENT_DURATION)
    if location:
        event.add("location", location)
    if description:
        event.add("description", description)
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def build_message(
    kind: str, facts: MailFacts, *, sender: str, now: datetime, manage_url: str
) -> EmailMessage:
    """The multipart mail `kind` (CONFIRMATION or REMINDER) about `facts`, with the
    attendee's `manage_url` (where they see and cancel their registration).

    Its parts are built with the `email.mime` classes and serialized once, here, as
    the body of the outer message: with the `EmailMessage` API every header of every
    part was parsed when set and parsed and refolded again when sent, which cost
    more than all the rest of a confirmation. Only the outer message is an
    `EmailMessage`, for the headers that need its care (an attendee's name, an
    address that may need SMTPUTF8).
    """
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
    text = _text_part(_templates.get_template(f"{kind}.txt").render(context), "plain")
    html = _text_part(_templates.get_template(f"{kind}.html").render(context), "html")
    if kind == CONFIRMATION and facts.ticket_code:
        image = _part(MIMEImage(ticket_qr_png(facts.ticket_code), "png"))
        image["Content-Disposition"] = 'inline; filename="ticket.png"'
        image["Content-ID"] = f"<{ticket_cid}>"
        html = _multipart("related", [html, image])
    body = _multipart("alternative", [text, html])
    if kind == CONFIRMATION:
        calendar = _part(MIMEBase("text", "calendar", method="PUBLISH"))
        calendar.set_payload(calendar_invitation(facts, stamp=now))
        encode_base64(calendar)
        calendar["Content-Disposition"] = 'attachment; filename="event.ics"'
        body = _multipart("mixed", [body, calendar])
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
    message["MIME-Version"] = "1.0"
    message["Content-Type"] = body["Content-Type"]
    # The parts as they go out, after the multipart's own headers.
    message.set_payload(body.as_string().split("\n\n", 1)[1])
    return message


# Text parts in quoted-printable UTF-8 (7-bit clean, readable when mostly ASCII).
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def _part(part: Message) -> Message:
    del part["MIME-Version"]  # the outer message's header, not each part's
    return part


def _text_part(text: str, subtype: str) -> Message:
    return _part(MIMEText(text, subtype, _UTF8_QP))  # type: ignore[arg-type]


def _multipart(subtype: str, parts: list[Message]) -> Message:
    # The boundary is chosen here, not by the generator (which compiles a regular
    # expression per boundary to look for it in the parts): 96 random bits, in a form
    # that quoted-printable and base64 lines cannot hold.
    boundary = f"==eventms.{secrets.token_hex(12)}=="
    return _part(MIMEMultipart(subtype, boundary=boundary, _subparts=parts))
