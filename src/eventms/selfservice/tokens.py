"""Manage tokens: the secret part of an attendee's `{APP_URL}/manage/{token}` link.

A token is stateless: the registration id and an HMAC-SHA256 of it under a key
derived from `SECRET_KEY`, base64url (43 characters). Chosen over a random token
column because it needs no migration, no backfill and no lookup index, works on
every instance and worker that shares the key, and survives restarts; a token is
checked in memory, so a forged one costs no query. A canceled registration's row is
gone, so its token finds nothing (and a new registration gets a new id, so a new
token). Its price: changing SECRET_KEY voids every link sent, and one link cannot be
revoked on its own (canceling the registration is the only way; none is needed yet).
The MAC is cut to 128 bits: far past guessing, and the link stays short.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid

_PURPOSE = b"eventms manage-token v1"  # separates this use of SECRET_KEY from others
_MAC_BYTES = 16
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


class ManageTokens:
    def __init__(self, secret_key: bytes) -> None:
        self._key = hmac.new(secret_key, _PURPOSE, hashlib.sha256).digest()

    def token_for(self, registration_id: uuid.UUID) -> str:
        raw = registration_id.bytes + self._mac(registration_id)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def registration_id(self, token: str) -> uuid.UUID | None:
        """The registration a token was made for, or None for anything forged or malformed."""
        if not _TOKEN.fullmatch(token):
            return None
        registration_id = uuid.UUID(bytes=base64.urlsafe_b64decode(token + "=")[:16])
        # Compared as a whole token, so that only the canonical encoding is accepted.
        if not hmac.compare_digest(self.token_for(registration_id), token):
            return None
        return registration_id

    def _mac(self, registration_id: uuid.UUID) -> bytes:
        return hmac.new(self._key, registration_id.bytes, hashlib.sha256).digest()[:_MAC_BYTES]


def manage_url(app_url: str, token: str) -> str:
    """The attendee's page, at the root of APP_URL (not under /api/v1)."""
    return f"{app_url.rstrip('/')}/manage/{token}"
