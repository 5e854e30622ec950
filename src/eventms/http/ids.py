"""Path ids: a malformed uuid names no resource, so it is a 404, never a 500."""

from __future__ import annotations

import uuid

from eventms.errors import NotFound


def parse_id(raw: str, resource: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound.by_id(resource, raw) from None
