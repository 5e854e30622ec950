"""`emit(session, type, data)`: what a service calls when something webhook-worthy
happened in its write. In that write's own transaction it records one delivery per
enabled endpoint that subscribed to `type` and defers its job, so a write that
commits always has its deliveries and one that rolls back has none."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from pydantic import BaseModel
from sqlalchemy import func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.webhooks.catalog import EventType
from eventms.webhooks.jobs import defer_delivery
from eventms.webhooks.models import WebhookDelivery, WebhookEndpoint


def payload(event_type: EventType, data: BaseModel, at: datetime) -> str:
    """`{"type", "timestamp", "data"}`, `data` being the resource as the API shows it."""
    return (
        b'{"type":%s,"timestamp":%s,"data":%s}'
        % (
            orjson.dumps(event_type.value),
            orjson.dumps(at.isoformat().replace("+00:00", "Z")),
            data.model_dump_json(by_alias=True).encode(),
        )
    ).decode()


async def emit(session: AsyncSession, event_type: EventType, data: BaseModel) -> None:
    subscribed = (
        select(WebhookEndpoint.id)
        .where(
            WebhookEndpoint.enabled,
            WebhookEndpoint.events.overlap([event_type.value, EventType.ALL.value]),
        )
        .order_by(WebhookEndpoint.id)
    )
    # Most writes have no endpoint to tell: one round trip, nothing serialized.
    endpoints = list(await session.scalars(subscribed))
    if not endpoints:
        return
    body = payload(event_type, data, datetime.now(UTC))
    rows = await session.execute(
        insert(WebhookDelivery)
        .from_select(
            ["id", "endpoint_id", "event_type", "body"],
            select(
                func.gen_random_uuid(),
                WebhookEndpoint.id,
                literal(event_type.value),
                literal(body),
            ).where(WebhookEndpoint.id.in_(endpoints)),
        )
        .returning(WebhookDelivery.id, WebhookDelivery.endpoint_id)
    )
    for delivery_id, endpoint_id in rows.all():
        await defer_delivery(session, delivery_id, endpoint_id)
