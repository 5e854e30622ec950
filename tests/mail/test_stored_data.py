"""Mail from rows stored before names were checked: a name that cannot go into a
header safely is left out of `To` (the mail still goes, once); a row that cannot make
a message at all is a permanent failure, logged once, not retried for hours."""

from __future__ import annotations

import asyncio
import email.policy
import logging
from email import message_from_bytes
from email.message import EmailMessage

import psycopg
import pytest

from eventms.config import Settings
from eventms.notifications.messages import _PLAIN_NAME, recipient
from eventms.notifications.worker import list_failed_mail
from tests.support.api import make_attendee, make_event, register
from tests.support.mail import RETRY_WAIT, drain, job_state
from tests.support.smtp import SmtpSink


async def registered_as(client, db: psycopg.Connection, *, name: str, email: str) -> str:
    """A registration whose attendee row holds `name` and `email` as stored (written
    behind the API's back, as older rows may be)."""
    event = await make_event(client, name="Launch")
    person = await make_attendee(client)
    db.execute(
        "UPDATE attendees SET name = %s, email = %s WHERE id = %s", (name, email, person["id"])
    )
    response = await register(client, event["id"], person["id"])
    assert response.status_code == 201
    return response.json()["result"]["id"]


def job_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("mail job")]


@pytest.mark.parametrize(
    "name",
    ["Eve\r\nBcc: x@example.com", "Eve\u2028Bcc: y@example.com", "\x1b[31mEve", "=?utf-8?q?Bob?="],
)
async def test_unsafe_display_name_is_left_out(
    client, db, sink: SmtpSink, mail_settings: Settings, caplog, name
) -> None:
    await registered_as(client, db, name=name, email="eve@example.com")
    with caplog.at_level(logging.WARNING, logger="eventms.mail"):
        await drain(mail_settings)
    [message] = sink.messages
    [address] = message["To"].addresses
    assert (address.display_name, address.addr_spec) == ("", "eve@example.com")
    assert message["Bcc"] is None and message["Cc"] is None
    assert "x@example.com" not in str(message["To"])
    assert not job_logs(caplog)  # no failure, no retry
    assert db.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'mail'"
    ).fetchone() == (0,)


async def test_a_safe_name_keeps_its_display_name(
    client, db, sink: SmtpSink, mail_settings: Settings
) -> None:
    await registered_as(client, db, name='Zoë "Z" O\'Brien, Jr.', email="zoe@example.com")
    await drain(mail_settings)
    [address] = sink.messages[0]["To"].addresses
    assert (address.display_name, address.addr_spec) == ('Zoë "Z" O\'Brien, Jr.', "zoe@example.com")


async def test_a_message_that_cannot_be_built_fails_once(
    client, db, sink: SmtpSink, mail_settings: Settings, caplog
) -> None:
    registration_id = await registered_as(client, db, name="Eve", email="eve@exa mple@.com")
    with caplog.at_level(logging.WARNING, logger="eventms.mail"):
        await drain(mail_settings)
        await asyncio.sleep(RETRY_WAIT)
        await drain(mail_settings)
    assert sink.messages == []
    assert job_state(db) == ("failed", 1)  # one attempt, no retry
    logged = job_logs(caplog)
    assert len(logged) == 1, logged
    assert "cannot be built" in logged[0] and "failed for good" in logged[0]
    [failed] = await list_failed_mail(mail_settings)
    assert failed.registration_id == registration_id


@pytest.mark.parametrize("name", ["Ada Lovelace", "Mary-Jane O'Neil", "Person 42", "Pat Smith Jr."])
def test_plain_names_are_kept_without_the_round_trip_and_read_back(name: str) -> None:
    """Plain names skip `recipient`'s round trip through a built message: they must
    read back as written all the same."""
    assert _PLAIN_NAME.fullmatch(name)
    message = EmailMessage()
    message["To"] = recipient(name, "p@example.com")
    [back] = message_from_bytes(message.as_bytes(), policy=email.policy.default)["To"].addresses
    assert (back.display_name, back.addr_spec) == (name, "p@example.com")
