"""API key tokens: `emsk_` and 32 random bytes (base64url), stored only as a hash.

A token carries 256 bits from the OS's CSPRNG, so it cannot be guessed or brute
forced from its hash: a fast hash (SHA-256) is the right one here. Slow password
hashes (bcrypt, argon2) exist to protect low-entropy human passwords, and would
cost every request milliseconds for no gain. The recognisable prefix lets secret
scanners (GitHub's, gitleaks) find a leaked token.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "emsk_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
