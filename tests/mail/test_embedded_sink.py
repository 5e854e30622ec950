"""The embedded SMTP sink of `eventms serve` keeps every message in its Maildir as
it was sent, with the envelope in `X-Peer`, `X-MailFrom` and `X-RcptTo`."""

from __future__ import annotations

import email.policy
import mailbox
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from eventms.embedded import EmbeddedSmtp


async def test_the_sink_keeps_each_message_as_sent(tmp_path: Path) -> None:
    sink = EmbeddedSmtp(tmp_path / "mail")
    host, port = sink.start()
    sent = []
    try:
        for n in range(3):
            message = EmailMessage()
            message["Subject"] = f"Hello {n}"
            message["From"] = "eventms@localhost"
            message["To"] = f"Zoë <zoe{n}@example.com>"
            message.set_content(f"Line one\n.line starting with a dot\nZoë {n}\n")
            message.add_attachment(b"\x00\x01binary", maintype="application", subtype="x-test")
            await aiosmtplib.send(message, hostname=host, port=port)
            sent.append(message)
    finally:
        sink.stop()
    box = mailbox.Maildir(tmp_path / "mail", create=False)
    parsed = (
        email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        for key in box.keys()
    )
    kept = sorted(parsed, key=lambda m: str(m["Subject"]))
    assert len(kept) == 3
    for n, (original, received) in enumerate(zip(sent, kept, strict=True)):
        assert received["Subject"] == f"Hello {n}"
        assert received["To"].addresses[0].display_name == "Zoë"
        assert received["X-MailFrom"] == "eventms@localhost"
        assert received["X-RcptTo"] == f"zoe{n}@example.com"
        assert "127.0.0.1" in received["X-Peer"]
        body = received.get_body(preferencelist=("plain",))
        assert body is not None
        assert body.get_content() == f"Line one\n.line starting with a dot\nZoë {n}\n"
        [attachment] = received.iter_attachments()
        assert attachment.get_content() == b"\x00\x01binary"
        assert b"\r\n" not in box.get_bytes(box.keys()[0])
        assert original["Subject"] == received["Subject"]
