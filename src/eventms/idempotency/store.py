"""The SQL of idempotency: the key's advisory lock and its stored answer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.idempotency.models import IdempotencyKey


@dataclass(frozen=True)
class StoredAnswer:
    fingerprint: str
    status: int
    body: bytes
    headers: list[tuple[str, str]]


def lock_id(scope: str, key: str) -> int:
    """A signed 64-bit advisory lock id for (scope, key). Two keys sharing one (odds
    of 2**-64 per pair in flight at once) would only answer a spurious 409."""
    digest = hashlib.sha256(f"idempotency\0{scope}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def try_lock(session: AsyncSession, scope: str, key: str) -> bool:
    """Take the key's lock for the rest of the session's transaction, or say it is
    held (by a request with this key still in flight, on any instance)."""
    got = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": lock_id(scope, key)}
    )
    return bool(got)


async def find(session: AsyncSession, scope: str, key: str) -> StoredAnswer | None:
    """The stored answer for (scope, key), unless it has expired (call with the lock)."""
    row = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.scope == scope,
            IdempotencyKey.key == key,
            IdempotencyKey.expires_at > func.now(),
        )
    )
    if row is None:
        return None
    headers = [(str(name), str(value)) for name, value in row.response_headers]
    return StoredAnswer(row.fingerprint, row.response_status, row.response_body, headers)


async def save(
    session: AsyncSession,
    *,
    scope: str,
    key: str,
    fingerprint: str,
    status: int,
    body: bytes,
    headers: list[tuple[str, str]],
    ttl: timedelta,
) -> None:
    """Store the answer in the session's transaction (replacing an expired one)."""
    values = {
        "scope": scope,
        "key": key,
        "fingerprint": fingerprint,
        "response_status": status,
        "response_body": body,
        "response_headers": [list(pair) for pair in headers],
        "created_at": func.now(),
        "expires_at": func.now() + ttl,
    }
    statement = insert(IdempotencyKey).values(**values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["scope", "key"],
            set_={n: statement.excluded[n] for n in values if n not in ("scope", "key")},
        )
    )
