"""Ticket codes: 20 characters of Crockford base32 (100 bits from `secrets`), stored
bare and upper case, shown in groups of five (`7K3QD-M9X2A-...`).

Crockford's alphabet leaves out I, L, O and U, so that a code read aloud or typed
from a phone screen is hard to get wrong; reading one back forgives case, dashes,
spaces, and I/L/O typed for 1/1/0. 100 bits cannot be guessed, even by a scanner
trying millions of codes, and uniqueness is still the database's (a unique
constraint): a collision is a 2^-50 event at a quadrillion tickets.
"""

from __future__ import annotations

import base64
import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 20  # 100 bits
GROUP = 5
PATTERN = f"^[{ALPHABET}]{{{LENGTH}}}$"  # what the column's CHECK accepts
_BARE = re.compile(PATTERN)
_SEPARATORS = str.maketrans({"-": None, " ": None, "I": "1", "L": "1", "O": "0"})


# RFC 4648 base32 digits, in value order, to Crockford's: the same 5 bits, its symbol.
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode())


def new_ticket_code() -> str:
    # 13 random bytes are 104 bits; the first 20 base32 digits use 100 of them, each
    # digit 5 uniform bits (20 `secrets.choice` calls cost ten times as much).
    return base64.b32encode(secrets.token_bytes(13))[:LENGTH].translate(_CROCKFORD).decode()


def grouped(code: str) -> str:
    """`XXXXX-XXXXX-XXXXX-XXXXX`, as people read it."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def read_ticket_code(typed: str) -> str | None:
    """The stored form of a typed or scanned code, or None when it cannot be one."""
    if len(typed) > 4 * LENGTH:  # no need to normalise a pasted novel
        return None
    bare = typed.strip().upper().translate(_SEPARATORS)
    return bare if _BARE.match(bare) else None
