"""`/webhooks` routes (scope `webhooks`): endpoints, their deliveries, retries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import Response

from eventms.access.deps import requires
from eventms.access.scopes import Scope
from eventms.api.deps import PageDep, SessionDep, StateDep
from eventms.http.envelope import Envelope, PageEnvelope, json_response, one, page_body
from eventms.http.errors import ERROR_RESPONSES
from eventms.http.ids import parse_id
from eventms.webhooks import service
from eventms.webhooks.schemas import (
    DeliveryOut,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)

WEBHOOKS = [requires(Scope.WEBHOOKS)]
router = APIRouter(prefix="/webhooks", tags=["Webhooks"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[WebhookWithSecret],
    summary="Add a webhook endpoint (its secret is shown this once)",
    description="400 when the URL resolves to a loopback, private or link-local address"
    " (unless WEBHOOK_ALLOW_PRIVATE).",
    dependencies=WEBHOOKS,
)
async def create_webhook(body: WebhookCreate, session: SessionDep, state: StateDep) -> Response:
    endpoint = await service.create_endpoint(
        session,
        url=body.url,
        events=[e.value for e in body.events],
        allow_private=state["settings"].webhook_private_allowed,
    )
    return one(201, "Webhook created", WebhookWithSecret.model_validate(endpoint))


@router.get(
    "", response_model=PageEnvelope[WebhookOut], summary="List webhooks", dependencies=WEBHOOKS
)
async def list_webhooks(session: SessionDep, page: PageDep) -> Response:
    endpoints, total = await service.list_endpoints(session, page=page)
    found = [WebhookOut.model_validate(e) for e in endpoints]
    return json_response(page_body("List of webhooks", found, WebhookOut, page, total))


@router.get(
    "/{webhook_id}",
    response_model=Envelope[WebhookOut],
    summary="Get a webhook",
    dependencies=WEBHOOKS,
)
async def get_webhook(webhook_id: str, session: SessionDep) -> Response:
    endpoint = await service.get_endpoint(session, endpoint_id=parse_id(webhook_id, "Webhook"))
    return one(200, "Webhook found", WebhookOut.model_validate(endpoint))


@router.patch(
    "/{webhook_id}",
    response_model=Envelope[WebhookOut],
    summary="Change a webhook's URL, events, or whether it is enabled",
    dependencies=WEBHOOKS,
)
async def update_webhook(
    webhook_id: str,
    session: SessionDep,
    state: StateDep,
    body: Annotated[WebhookUpdate | None, Body()] = None,
) -> Response:
    changes = body.model_dump(exclude_unset=True) if body else {}
    if "events" in changes:
        changes["events"] = [str(e) for e in changes["events"]]
    endpoint = await service.update_endpoint(
        session,
        endpoint_id=parse_id(webhook_id, "Webhook"),
        changes=changes,
        allow_private=state["settings"].webhook_private_allowed,
    )
    return one(200, "Webhook updated", WebhookOut.model_validate(endpoint))


@router.delete(
    "/{webhook_id}",
    response_model=Envelope[WebhookOut],
    summary="Delete a webhook and its delivery log",
    dependencies=WEBHOOKS,
)
async def delete_webhook(webhook_id: str, session: SessionDep) -> Response:
    endpoint = await service.delete_endpoint(session, endpoint_id=parse_id(webhook_id, "Webhook"))
    return one(200, "Webhook deleted", WebhookOut.model_validate(endpoint))


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=Envelope[WebhookWithSecret],
    summary="Replace a webhook's secret (the new one is shown this once)",
    dependencies=WEBHOOKS,
)
async def rotate_secret(webhook_id: str, session: SessionDep) -> Response:
    endpoint = await service.rotate_secret(session, endpoint_id=parse_id(webhook_id, "Webhook"))
    return one(200, "Webhook secret rotated", WebhookWithSecret.model_validate(endpoint))


@router.get(
    "/{webhook_id}/deliveries",
    response_model=PageEnvelope[DeliveryOut],
    summary="A webhook's deliveries, newest first",
    dependencies=WEBHOOKS,
)
async def list_deliveries(webhook_id: str, session: SessionDep, page: PageDep) -> Response:
    deliveries, total = await service.list_deliveries(
        session, endpoint_id=parse_id(webhook_id, "Webhook"), page=page
    )
    found = [DeliveryOut.model_validate(d) for d in deliveries]
    return json_response(page_body("List of deliveries", found, DeliveryOut, page, total))


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=Envelope[DeliveryOut],
    summary="Send a delivery again (same webhook-id)",
    description="409 while the delivery is still being attempted, or when the webhook is disabled.",
    dependencies=WEBHOOKS,
)
async def retry_delivery(webhook_id: str, delivery_id: str, session: SessionDep) -> Response:
    delivery = await service.retry_delivery(
        session,
        endpoint_id=parse_id(webhook_id, "Webhook"),
        delivery_id=parse_id(delivery_id, "Delivery"),
    )
    return one(202, "Delivery queued", DeliveryOut.model_validate(delivery))
