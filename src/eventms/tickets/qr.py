"""The QR code of a ticket, as a PNG: what the door's scanner reads.

segno makes the symbol; the PNG is written here. segno's PNG writer packs the bits
of every pixel row in Python, which was most of the time a confirmation mail took
to render; at this image's scale (8 pixels a module) a module is exactly one byte
of a 1-bit row, so each row is its modules' bytes, translated in one call. The
image is the one segno writes (tests/test_tickets.py compares their pixels).
"""

from __future__ import annotations

import struct
import zlib

import segno

# One data mask for every ticket: choosing the best of the eight (segno's default)
# scores each on the whole symbol, 80 % of the encoding's time. Every mask makes a
# valid symbol, which scanners read alike; the score only avoids patterns that
# could confuse one, rare in a 21x21 symbol with its quiet zone.
MASK = 0  # the one the scoring picks most often for ticket codes
SCALE = 8  # pixels a module: one byte of a 1-bit row
BORDER = 4  # modules of quiet zone, as the standard asks

# A module (1: dark) as the byte of 8 pixels of a 1-bit greyscale row (0: black).
_PIXELS = bytes([0xFF, 0x00]) + bytes(254)


def ticket_qr_png(code: str) -> bytes:
    """A PNG of the bare code (upper-case base32 fits QR's alphanumeric mode: a
    21x21 version 1 symbol), large enough for a phone camera at arm's length."""
    matrix = segno.make_qr(code, error="m", mask=MASK).matrix
    quiet = b"\xff" * BORDER
    blank = b"\x00" + quiet * 2 + b"\xff" * len(matrix[0])  # filter byte, then pixels
    rows = [blank] * (BORDER * SCALE)
    for modules in matrix:
        rows += [b"\x00" + quiet + bytes(modules).translate(_PIXELS) + quiet] * SCALE
    rows += [blank] * (BORDER * SCALE)
    side = len(blank) - 1
    header = struct.pack(">IIBBBBB", side * 8, side * 8, 1, 0, 0, 0, 0)  # 1-bit grey
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(b"".join(rows), 9)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
