"""Webhooks through the API and a real receiver on loopback: endpoints, signatures
(checked with the official `standardwebhooks` package), payloads, retries,
Retry-After, 410, timeouts, disabling, manual retries, SSRF, and a write that
rolls back (no delivery)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from eventms.app import create_app
from eventms.config import Settings
from eventms.registrations import service as registrations
from eventms.webhooks.jobs import purge_deliveries
from tests.integrations.conftest import drain_webhooks, work_until
from tests.integrations.receiver import Answer, by_id
from tests.support.api import make_attendee, make_event, register
from tests.support.asgi import running
from tests.support.databases import libpq as _libpq

pytestmark = pytest.mark.asyncio


async def add_hook(
    client: httpx.AsyncClient, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    response = await client.post("/webhooks", json={"url": url, "events": events or ["*"]})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()["result"]
    return made


def verified(secret: str, request: Any) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


async def deliveries(client: httpx.AsyncClient, hook_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/webhooks/{hook_id}/deliveries")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["result"]
    return found


async def test_endpoints_are_managed_over_the_api(client):
    made = await add_hook(client, "http://127.0.0.1:9/a", ["registration.created", "event.created"])
    assert made["secret"].startswith("whsec_")
    assert made["events"] == ["event.created", "registration.created"]
    assert made["enabled"] is True and made["createdAt"]
    one = (await client.get(f"/webhooks/{made['id']}")).json()["result"]
    assert "secret" not in one
    listed = (await client.get("/webhooks")).json()
    assert listed["meta"]["total"] == 1 and "secret" not in listed["result"][0]
    changed = await client.patch(
        f"/webhooks/{made['id']}", json={"events": ["*"], "enabled": False}
    )
    assert changed.status_code == 200
    assert changed.json()["result"]["events"] == ["*"]
    assert changed.json()["result"]["enabled"] is False
    rotated = (await client.post(f"/webhooks/{made['id']}/rotate-secret")).json()["result"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != made["secret"]
    assert (await client.delete(f"/webhooks/{made['id']}")).status_code == 200
    assert (await client.get(f"/webhooks/{made['id']}")).status_code == 404
    assert (await client.get("/webhooks/not-a-uuid")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://127.0.0.1:9/a", "events": ["registration.exploded"]},
        {"url": "http://127.0.0.1:9/a", "events": []},
        {"url": "ftp://127.0.0.1/a", "events": ["*"]},
        {"url": "not a url", "events": ["*"]},
        {"events": ["*"]},
    ],
)
async def test_bad_endpoints_are_400(client, db, body):
    response = await client.post("/webhooks", json=body)
    assert response.status_code == 400, response.text
    assert db.execute("SELECT count(*) FROM webhook_endpoints").fetchone() == (0,)


@pytest.fixture
async def strict_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    strict = settings.model_copy(update={"webhook_allow_private": False})
    async with running(create_app(strict)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as http:
            yield http


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
async def test_private_addresses_are_refused_when_not_allowed(strict_client, url):
    response = await strict_client.post("/webhooks", json={"url": url, "events": ["*"]})
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("Webhook URL refused:")


async def test_the_address_is_checked_again_at_delivery(client, settings, receiver, db):
    hook = await add_hook(client, receiver.url)  # allowed here (APP_ENV=test)
    await make_event(client)
    strict = settings.model_copy(update={"webhook_allow_private": False})
    await drain_webhooks(strict)
    assert receiver.received == []
    [delivery] = await deliveries(client, hook["id"])
    assert delivery["lastError"].startswith("URL refused:")
    assert delivery["status"] == "pending" and delivery["attempts"] == 1


async def test_a_registration_is_delivered_signed_with_the_admin_view(client, settings, receiver):
    hook = await add_hook(client, receiver.url, ["registration.created"])
    event = await make_event(client)
    person = await make_attendee(client)
    registration = (await register(client, event["id"], person["id"])).json()["result"]
    await drain_webhooks(settings)
    [request] = receiver.wait_for(1)
    payload = verified(hook["secret"], request)
    assert payload["type"] == "registration.created"
    assert payload["timestamp"].endswith("Z")
    read = (await client.get(f"/registration/{registration['id']}")).json()["result"]
    assert payload["data"] == read
    assert request.headers["webhook-id"].startswith("msg_")
    assert request.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(request.body, request.headers)
    [delivery] = await deliveries(client, hook["id"])
    assert delivery["status"] == "delivered"
    assert (delivery["attempts"], delivery["lastStatusCode"]) == (1, 200)
    assert delivery["id"] == str(uuid.UUID(request.headers["webhook-id"][4:]))


async def test_event_changes_and_cancellations_are_delivered_in_order(client, settings, receiver):
    hook = await add_hook(client, receiver.url)
    event = await make_event(client)
    person = await make_attendee(client)
    registration = (await register(client, event["id"], person["id"])).json()["result"]
    assert (
        await client.patch(f"/event/{event['id']}", json={"name": "Renamed"})
    ).status_code == 200
    assert (await client.delete(f"/registration/{registration['id']}")).status_code == 200
    assert (await client.delete(f"/event/{event['id']}")).status_code == 200
    await drain_webhooks(settings, concurrency=1)
    received = receiver.wait_for(5)
    payloads = [verified(hook["secret"], r) for r in received]
    assert [p["type"] for p in payloads] == [
        "event.created",
        "registration.created",
        "event.updated",
        "registration.canceled",
        "event.deleted",
    ]
    assert payloads[2]["data"]["name"] == "Renamed"
    assert payloads[2]["data"]["eventAttendees"][0]["attendee"]["email"] == person["email"]
    assert payloads[4]["data"]["id"] == event["id"]


async def test_only_subscribed_and_enabled_endpoints_get_deliveries(client, settings, receiver):
    await add_hook(client, receiver.url, ["registration.created"])
    off = await add_hook(client, receiver.url, ["*"])
    await client.patch(f"/webhooks/{off['id']}", json={"enabled": False})
    await make_event(client)
    await drain_webhooks(settings)
    assert receiver.received == []


async def test_a_rolled_back_registration_has_no_delivery(app, client, settings, receiver, db):
    hook = await add_hook(client, receiver.url, ["registration.created"])
    event = await make_event(client, maxAttendees=10)
    kept, dropped = await make_attendee(client), await make_attendee(client)
    sessions = app.state["sessions"]

    async def register_then(attendee: dict[str, Any], commit: bool) -> None:
        async with sessions() as session:
            await registrations.register(
                session, event_id=uuid.UUID(event["id"]), attendee_id=uuid.UUID(attendee["id"])
            )
            await asyncio.sleep(0.05)  # both transactions open at once
            if commit:
                await session.commit()
            else:
                await session.rollback()

    await asyncio.gather(register_then(kept, True), register_then(dropped, False))
    assert db.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'deliver_webhook'"
    ).fetchone() == (1,)
    await drain_webhooks(settings)
    [request] = receiver.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 1
    assert verified(hook["secret"], request)["data"]["attendeeId"] == kept["id"]
    assert db.execute("SELECT count(*) FROM webhook_deliveries").fetchone() == (1,)


async def test_a_failure_is_retried_with_the_same_id_until_delivered(
    client, hook_settings, receiver
):
    hook = await add_hook(client, receiver.url, ["event.created"])
    receiver.answer(Answer(500), Answer(502))
    await make_event(client)
    await work_until(hook_settings, lambda: len(receiver.received) >= 3)
    requests = receiver.received
    assert len(by_id(requests)) == 1  # one delivery, three attempts
    for request in requests:
        verified(hook["secret"], request)
    [delivery] = await deliveries(client, hook["id"])
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)
    endpoint = (await client.get(f"/webhooks/{hook['id']}")).json()["result"]
    assert endpoint["failingSince"] is None and endpoint["enabled"] is True


async def test_retry_after_is_honoured(client, hook_settings, receiver):
    await add_hook(client, receiver.url, ["event.created"])
    receiver.answer(Answer(503, headers={"Retry-After": "3"}))
    await make_event(client)
    await work_until(hook_settings, lambda: len(receiver.received) >= 2, within=30)
    first, second = receiver.received[:2]
    assert second.at - first.at >= 2.9  # not the 0.3 s backoff


async def test_410_disables_the_endpoint(client, hook_settings, receiver, caplog):
    hook = await add_hook(client, receiver.url, ["event.created"])
    receiver.answer(Answer(410))
    caplog.set_level(logging.WARNING, logger="eventms.webhooks")
    await make_event(client)
    await drain_webhooks(hook_settings)
    endpoint = (await client.get(f"/webhooks/{hook['id']}")).json()["result"]
    assert endpoint["enabled"] is False
    assert "410" in endpoint["disabledReason"]
    [delivery] = await deliveries(client, hook["id"])
    assert (delivery["status"], delivery["lastStatusCode"]) == ("failed", 410)
    assert any("disabled" in r.getMessage() for r in caplog.records)
    await make_event(client)
    await drain_webhooks(hook_settings)
    assert len(receiver.received) == 1
    # A retry of a disabled endpoint's delivery is refused until it is enabled again.
    retry = await client.post(f"/webhooks/{hook['id']}/deliveries/{delivery['id']}/retry")
    assert retry.status_code == 409


async def test_an_endpoint_failing_for_too_long_is_disabled_and_logged(
    client, hook_settings, receiver, db, caplog
):
    hook = await add_hook(client, receiver.url, ["event.created"])
    db.execute("UPDATE webhook_endpoints SET failing_since = now() - interval '121 hours'")
    receiver.answer(Answer(500))
    caplog.set_level(logging.WARNING, logger="eventms.webhooks")
    await make_event(client)
    await drain_webhooks(hook_settings)
    endpoint = (await client.get(f"/webhooks/{hook['id']}")).json()["result"]
    assert endpoint["enabled"] is False
    assert endpoint["disabledReason"].startswith("every delivery failed for 120 h")
    assert any("disabled" in r.getMessage() for r in caplog.records)
    enabled = await client.patch(f"/webhooks/{hook['id']}", json={"enabled": True})
    assert enabled.json()["result"]["failingSince"] is None


async def test_a_receiver_that_never_answers_times_out(client, hook_settings, receiver):
    hook = await add_hook(client, receiver.url, ["event.created"])
    receiver.answer(Answer(hang=True), Answer(200, delay=3))  # then slower than the timeout
    await make_event(client)
    await drain_webhooks(hook_settings)
    [delivery] = await deliveries(client, hook["id"])
    assert delivery["lastError"] == "no answer within 2 s"
    assert delivery["status"] == "pending" and delivery["nextAttemptAt"]
    await work_until(hook_settings, lambda: len(receiver.received) >= 3, within=30)
    assert len(by_id(receiver.received)) == 1


async def test_gives_up_after_the_retry_window_and_retries_by_hand(client, hook_settings, receiver):
    brief = hook_settings.model_copy(update={"webhook_retry_hours": 0.0001})  # 0.36 s
    hook = await add_hook(client, receiver.url, ["event.created"])
    receiver.answer(Answer(500))
    await make_event(client)
    await asyncio.sleep(0.5)  # the first attempt comes after the window: given up at once
    await drain_webhooks(brief)
    [failed] = await deliveries(client, hook["id"])
    assert (failed["status"], failed["attempts"], failed["lastStatusCode"]) == ("failed", 1, 500)
    retry = await client.post(f"/webhooks/{hook['id']}/deliveries/{failed['id']}/retry")
    assert retry.status_code == 202, retry.text
    again = await client.post(f"/webhooks/{hook['id']}/deliveries/{failed['id']}/retry")
    assert again.status_code == 409  # still being attempted
    await drain_webhooks(brief)
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    [done] = await deliveries(client, hook["id"])
    assert (done["status"], done["attempts"]) == ("delivered", 2)
    missing = await client.post(f"/webhooks/{hook['id']}/deliveries/{uuid.uuid4()}/retry")
    assert missing.status_code == 404


async def test_a_rotated_secret_signs_with_the_new_key(client, settings, receiver):
    hook = await add_hook(client, receiver.url, ["event.created"])
    rotated = (await client.post(f"/webhooks/{hook['id']}/rotate-secret")).json()["result"]
    await make_event(client)
    await drain_webhooks(settings)
    [request] = receiver.wait_for(1)
    assert verified(rotated["secret"], request)["type"] == "event.created"
    with pytest.raises(WebhookVerificationError):
        verified(hook["secret"], request)


async def test_redirects_are_not_followed(client, settings, receiver):
    hook = await add_hook(client, receiver.url, ["event.created"])
    receiver.answer(Answer(307, headers={"Location": receiver.url + "/elsewhere"}))
    await make_event(client)
    await drain_webhooks(settings)
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 1
    [delivery] = await deliveries(client, hook["id"])
    assert delivery["lastError"] == "answered 307 (redirects are not followed)"


async def test_old_deliveries_are_purged(client, settings, receiver, database_url, db):
    hook = await add_hook(client, receiver.url, ["event.created"])
    await make_event(client)
    await make_event(client)
    db.execute(
        "UPDATE webhook_deliveries SET created_at = now() - interval '31 days'"
        " WHERE id = (SELECT id FROM webhook_deliveries LIMIT 1)"
    )
    async with await psycopg.AsyncConnection.connect(_libpq(database_url)) as connection:
        assert await purge_deliveries(connection, days=30) == 1
    assert len(await deliveries(client, hook["id"])) == 1


async def test_deliveries_are_paged(client, settings, receiver):
    hook = await add_hook(client, receiver.url, ["event.created"])
    for _ in range(3):
        await make_event(client)
    page = (await client.get(f"/webhooks/{hook['id']}/deliveries?limit=2&page=2")).json()
    assert page["meta"] == {"page": 2, "limit": 2, "total": 3}
    assert len(page["result"]) == 1
    assert json.loads(json.dumps(page["result"][0]))["eventType"] == "event.created"
    assert (await client.get(f"/webhooks/{uuid.uuid4()}/deliveries")).status_code == 404


async def test_waiting_list_and_check_in_are_delivered(client, settings, receiver):
    hook = await add_hook(
        client, receiver.url, ["waitlist.joined", "waitlist.promoted", "checkin.created"]
    )
    event = await make_event(client, maxAttendees=1)
    holder, waiting = await make_attendee(client), await make_attendee(client)
    held = (await register(client, event["id"], holder["id"])).json()["result"]
    joined = await client.post(f"/event/{event['id']}/waitlist", json={"attendeeId": waiting["id"]})
    assert joined.status_code == 201, joined.text
    assert (await client.delete(f"/registration/{held['id']}")).status_code == 200
    promoted = (await client.get(f"/event/{event['id']}")).json()["result"]["eventAttendees"][0]
    read = (await client.get(f"/registration/{promoted['id']}")).json()["result"]
    scanned = await client.post("/checkin", json={"code": read["ticketCode"]})
    assert scanned.status_code == 201, scanned.text
    await drain_webhooks(settings)
    payloads = [verified(hook["secret"], r) for r in receiver.wait_for(3)]
    by_type = {p["type"]: p["data"] for p in payloads}
    assert set(by_type) == {"waitlist.joined", "waitlist.promoted", "checkin.created"}
    assert by_type["waitlist.joined"] == joined.json()["result"]
    assert by_type["waitlist.promoted"] == read
    assert by_type["checkin.created"] == scanned.json()["result"]
