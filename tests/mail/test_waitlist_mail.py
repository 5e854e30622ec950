"""A promoted attendee's confirmation says the seat came off the waiting list."""

from __future__ import annotations

from eventms.config import Settings
from tests.support.api import make_attendee, make_event, register
from tests.support.mail import drain
from tests.support.smtp import SmtpSink, parts

OFF_THE_LIST = "you came off the waiting list"


async def test_promoted_confirmation_says_it_came_off_the_waiting_list(
    client, db, sink: SmtpSink, mail_settings: Settings
) -> None:
    event = await make_event(client, name="Sold Out", maxAttendees=1)
    holder = await make_attendee(client, email="holder@example.com")
    waiting = await make_attendee(client, name="Grace Hopper", email="grace@example.com")
    seat = (await register(client, event["id"], holder["id"])).json()["result"]["id"]
    joined = await client.post(f"/event/{event['id']}/waitlist", json={"attendeeId": waiting["id"]})
    assert joined.status_code == 201
    await drain(mail_settings)
    assert (await client.delete(f"/registration/{seat}")).status_code == 200
    await drain(mail_settings)
    await drain(mail_settings)  # nothing left: one mail per registration

    by_recipient = {m["To"].addresses[0].addr_spec: m for m in sink.messages}
    assert len(sink.messages) == 2 and set(by_recipient) == {
        "holder@example.com",
        "grace@example.com",
    }
    promoted = by_recipient["grace@example.com"]
    assert promoted["Subject"] == "Registration Confirmation"
    text, html, attachments = parts(promoted)
    for body in (text, html):
        assert "Hello Grace Hopper" in body
        assert OFF_THE_LIST in body.lower()
        assert "Sold Out" in body
    assert len(attachments) == 1
    for body in parts(by_recipient["holder@example.com"])[:2]:
        assert OFF_THE_LIST not in body.lower()
