"""The ticket in the confirmation mail: its code as text, and as a QR code image
inside the mail (a `cid:` part related to the HTML) that decodes back to it."""

from __future__ import annotations

import io
import re

import segno
import zxingcpp
from PIL import Image

from eventms.config import Settings
from eventms.tickets.codes import new_ticket_code
from eventms.tickets.qr import BORDER, MASK, SCALE, ticket_qr_png
from tests.support.api import make_attendee, make_event, register
from tests.support.mail import drain
from tests.support.smtp import SmtpSink


async def test_the_confirmation_carries_the_ticket_as_text_and_qr_code(
    client, sink: SmtpSink, mail_settings: Settings
) -> None:
    event = await make_event(client, name="Door Test")
    person = await make_attendee(client, name="Grace Hopper")
    made = await register(client, event["id"], person["id"])
    code = made.json()["result"]["ticketCode"]

    await drain(mail_settings)

    [message] = sink.messages
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert f"Ticket: {code}" in text.get_content()
    html_text = html.get_content()
    assert code in html_text
    [cid] = re.findall(r'<img src="cid:([^"]+)"', html_text)
    assert "http" not in re.findall(r"<img[^>]*>", html_text)[0]

    # The image is a sibling of the HTML in multipart/related, named by its Content-ID.
    related = next(p for p in message.walk() if p.get_content_type() == "multipart/related")
    images = [p for p in related.iter_parts() if p.get_content_maintype() == "image"]
    [image] = images
    assert image["Content-ID"] == f"<{cid}>"
    assert image.get_content_type() == "image/png"
    picture = Image.open(io.BytesIO(image.get_content()))
    [decoded] = zxingcpp.read_barcodes(picture)
    assert decoded.format == zxingcpp.BarcodeFormat.QRCode
    assert decoded.text == code.replace("-", "")
    # What the scanner read is a ticket the door accepts.
    scanned = await client.post("/checkin", json={"code": decoded.text})
    assert scanned.status_code == 201
    assert scanned.json()["result"]["attendee"] == {"name": "Grace Hopper"}
    # The .ics invitation is still attached, once.
    assert [p.get_filename() for p in message.iter_attachments()] == ["event.ics"]


def test_the_ticket_image_is_the_one_segno_writes_and_reads_back() -> None:
    """eventms writes the PNG itself (segno's writer was most of a mail's rendering):
    pixel for pixel the image segno's own writer makes of the same symbol, and each
    decodes back to its code."""
    for _ in range(20):
        code = new_ticket_code()
        ours = Image.open(io.BytesIO(ticket_qr_png(code)))
        reference = io.BytesIO()
        segno.make_qr(code, error="m", mask=MASK).save(
            reference, kind="png", scale=SCALE, border=BORDER
        )
        theirs = Image.open(reference)
        assert ours.size == theirs.size == (232, 232)
        assert ours.convert("L").tobytes() == theirs.convert("L").tobytes()
        [decoded] = zxingcpp.read_barcodes(ours)
        assert decoded.text == code
