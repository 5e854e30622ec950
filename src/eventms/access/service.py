"""API keys: create (the token is returned once, only its hash kept), list, revoke."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.access.caller import ADMIN_KEY_NAME
from eventms.access.models import ApiKey
from eventms.access.scopes import Scope
from eventms.access.tokens import new_token, token_hash
from eventms.db.base import constraint_name
from eventms.errors import Conflict, NotFound

NAME_TAKEN = "uq_api_keys_name_active"


async def create_key(
    session: AsyncSession, *, name: str, scopes: list[Scope]
) -> tuple[ApiKey, str]:
    """A new key and its token (which is not stored)."""
    token = new_token()
    key = ApiKey(name=name, token_hash=token_hash(token), scopes=sorted(set(scopes)))
    session.add(key)
    try:
        await session.flush()
    except IntegrityError as error:
        if constraint_name(error) == NAME_TAKEN:
            raise Conflict(f"An API key named {name} already exists") from None
        raise
    await session.refresh(key)
    return key, token


async def list_keys(session: AsyncSession, *, include_revoked: bool = False) -> list[ApiKey]:
    statement = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        statement = statement.where(ApiKey.revoked_at.is_(None))
    return list(await session.scalars(statement))


async def revoke_key(
    session: AsyncSession, *, key_id: uuid.UUID | None = None, name: str | None = None
) -> ApiKey:
    """Revoke the active key with this id (or name); it keeps its row."""
    condition = ApiKey.id == key_id if key_id is not None else ApiKey.name == name
    revoked = await session.scalar(
        update(ApiKey)
        .where(condition, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now(), updated_at=func.now())
        .returning(ApiKey)
    )
    if revoked is None:
        if key_id is not None:
            raise NotFound.by_id("API key", key_id)
        raise NotFound(f"No active API key named {name}")
    return revoked


async def install_admin_key(session: AsyncSession, token: str) -> None:
    """Make `token` (ADMIN_API_KEY) an active `admin` key, stored hashed; a changed
    token replaces the previous one. Safe when several instances start at once."""
    digest = token_hash(token)
    await session.execute(
        text(
            "UPDATE api_keys SET revoked_at = now(), updated_at = now()"
            " WHERE name = :name AND revoked_at IS NULL AND token_hash <> :digest"
        ),
        {"name": ADMIN_KEY_NAME, "digest": digest},
    )
    await session.execute(
        text(
            "INSERT INTO api_keys (id, name, token_hash, scopes)"
            " VALUES (:id, :name, :digest, ARRAY['admin'])"
            " ON CONFLICT DO NOTHING"
        ),
        {"id": uuid.uuid4(), "name": ADMIN_KEY_NAME, "digest": digest},
    )
