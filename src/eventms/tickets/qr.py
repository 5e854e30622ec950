"""The QR code of a ticket, as a PNG (segno): what the door's scanner reads."""

from __future__ import annotations

import io

import segno


def ticket_qr_png(code: str) -> bytes:
    """A PNG of the bare code (upper-case base32 fits QR's alphanumeric mode: a
    21x21 version 1 symbol), large enough for a phone camera at arm's length."""
    buffer = io.BytesIO()
    segno.make_qr(code, error="m").save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()
