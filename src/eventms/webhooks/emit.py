"""`emit(session, type, data)`: what a service calls when something webhook-worthy
happened in its write. In that write's own transaction it records one delivery per
enabled endpoint that subscribed to `type` and defers its job, so a write that
commits always has its deliveries and one that rolls back has none.

A hot write may instead read the subscribed endpoints in a statement it sends
anyway (`subscribed_ids_sql`), and hand them with its data, already JSON, to
`emit_json`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
from pydantic import BaseModel
from sqlalchemy import func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.webhooks.catalog import EventType
from eventms.webhooks.jobs import defer_delivery
from eventms.webhooks.models import WebhookDelivery, WebhookEndpoint


def payload(event_type: EventType, data_json: bytes, at: datetime) -> str:
    """`{"type", "timestamp", "data"}`, `data` being the resource as the API shows it."""
    return (
        b'{"type":%s,"timestamp":%s,"data":%s}'
        % (
            orjson.dumps(event_type.value),
            orjson.dumps(at.isoformat().replace("+00:00", "Z")),
            data_json,
        )
    ).decode()


def _types(event_type: EventType) -> list[str]:
    return [event_type.value, EventType.ALL.value]


def subscribed_ids_sql(event_type: EventType) -> str:
    """An SQL expression (psycopg syntax, no parameters): the ids of the enabled
    endpoints subscribed to `event_type`, in order, as a uuid array."""
    types = ",".join(f"'{t}'" for t in _types(event_type))  # the catalog's own names
    return (
        "array(SELECT w.id FROM webhook_endpoints w WHERE w.enabled"
        f" AND w.events && ARRAY[{types}]::text[] ORDER BY w.id)"
    )


async def emit(session: AsyncSession, event_type: EventType, data: BaseModel) -> None:
    subscribed = (
        select(WebhookEndpoint.id)
        .where(WebhookEndpoint.enabled, WebhookEndpoint.events.overlap(_types(event_type)))
        .order_by(WebhookEndpoint.id)
    )
    # Most writes have no endpoint to tell: one round trip, nothing serialized.
    endpoints = list(await session.scalars(subscribed))
    if endpoints:
        await emit_json(
            session, event_type, endpoints, data.model_dump_json(by_alias=True).encode()
        )


async def emit_json(
    session: AsyncSession,
    event_type: EventType,
    endpoints: Sequence[uuid.UUID],
    data_json: bytes,
) -> None:
    """One delivery and its job per endpoint in `endpoints` (the subscribed ones, read
    in this transaction), carrying `data_json`."""
    if not endpoints:
        return
    body = payload(event_type, data_json, datetime.now(UTC))
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
