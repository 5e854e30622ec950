"""Webhook endpoints and their deliveries: create, change, rotate, list, retry."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.db.queries import Page, get_one_or_404, paginate
from eventms.errors import BadRequest, Conflict, NotFound
from eventms.webhooks.addresses import UnsafeUrl, check_url
from eventms.webhooks.jobs import defer_delivery
from eventms.webhooks.models import PENDING, WebhookDelivery, WebhookEndpoint
from eventms.webhooks.signing import new_secret

RESOURCE = "Webhook"


async def _safe(url: str, allow_private: bool) -> None:
    try:
        await check_url(url, allow_private=allow_private)
    except UnsafeUrl as refused:
        raise BadRequest(f"Webhook URL refused: {refused}") from None


async def create_endpoint(
    session: AsyncSession, *, url: str, events: list[str], allow_private: bool
) -> WebhookEndpoint:
    await _safe(url, allow_private)
    endpoint = WebhookEndpoint(url=url, events=events, secret=new_secret())
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint


async def get_endpoint(session: AsyncSession, *, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    return await get_one_or_404(session, WebhookEndpoint, endpoint_id, resource=RESOURCE)


async def list_endpoints(session: AsyncSession, *, page: Page) -> tuple[list[WebhookEndpoint], int]:
    statement = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    return await paginate(session, statement, page)


async def _change(
    session: AsyncSession, endpoint_id: uuid.UUID, values: dict[str, Any]
) -> WebhookEndpoint:
    changed = await session.scalar(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(**values, updated_at=func.now())
        .returning(WebhookEndpoint)
        .execution_options(populate_existing=True)
    )
    if changed is None:
        raise NotFound.by_id(RESOURCE, endpoint_id)
    return changed


async def update_endpoint(
    session: AsyncSession, *, endpoint_id: uuid.UUID, changes: dict[str, Any], allow_private: bool
) -> WebhookEndpoint:
    if "url" in changes:
        await _safe(changes["url"], allow_private)
    if changes.get("enabled") is True:
        # Turned back on by hand: a fresh start for the disabling rule.
        changes = {**changes, "failing_since": None, "disabled_reason": None}
    if not changes:
        return await get_endpoint(session, endpoint_id=endpoint_id)
    return await _change(session, endpoint_id, changes)


async def rotate_secret(session: AsyncSession, *, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """A new secret; every attempt from now on (retries too) is signed with it."""
    return await _change(session, endpoint_id, {"secret": new_secret()})


async def delete_endpoint(session: AsyncSession, *, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """Delete the endpoint and its log; jobs still queued find nothing and stop."""
    endpoint = await get_endpoint(session, endpoint_id=endpoint_id)
    await session.delete(endpoint)
    await session.flush()
    return endpoint


async def list_deliveries(
    session: AsyncSession, *, endpoint_id: uuid.UUID, page: Page
) -> tuple[list[WebhookDelivery], int]:
    await get_endpoint(session, endpoint_id=endpoint_id)
    statement = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
    )
    return await paginate(session, statement, page)


async def retry_delivery(
    session: AsyncSession, *, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Send a finished delivery (failed, or delivered) again, with the same id."""
    endpoint = await get_endpoint(session, endpoint_id=endpoint_id)
    if not endpoint.enabled:
        raise Conflict("This webhook is disabled: enable it first")
    retried = await session.scalar(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status != PENDING,
        )
        .values(status=PENDING, next_attempt_at=func.now())
        .returning(WebhookDelivery)
        .execution_options(populate_existing=True)
    )
    if retried is None:
        exists = await session.scalar(
            select(WebhookDelivery.id).where(
                WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id
            )
        )
        if exists is None:
            raise NotFound.by_id("Delivery", delivery_id)
        raise Conflict("This delivery is still being attempted")
    await defer_delivery(session, delivery_id, endpoint_id)
    return retried
