"""Socket.IO notifications, heard by python-socketio clients of a live `eventms serve`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.api import make_attendee, make_event, register
from tests.support.live_server import LiveServer
from tests.support.sockets import Listener


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    live = LiveServer(database_url, redis_url)
    yield live
    live.stop()


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{server.base}/api/v1", timeout=15) as client:
        yield client


@pytest.fixture
async def listen(server: LiveServer) -> AsyncIterator[Any]:
    """`await listen()` connects a new listener (websocket unless told otherwise)."""
    opened: list[Listener] = []

    async def connect(transport: str = "websocket") -> Listener:
        listener = await Listener().connect(server.base, transport)
        opened.append(listener)
        return listener

    yield connect
    for listener in opened:
        await listener.close()


def payload_of(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventId": event["id"],
        "name": event["name"],
        "date": event["date"],
        "availableSeats": event["availableSeats"],
        "maxAttendees": event["maxAttendees"],
    }


async def barrier(http: httpx.AsyncClient, *listeners: Listener) -> None:
    """Create an event and wait until every listener has heard of it."""
    marker = await make_event(http, name="barrier")
    for listener in listeners:
        await listener.wait_for("event.created", lambda p: p["eventId"] == marker["id"])


def heard(listener: Listener) -> list[str]:
    """The messages heard, barrier events left out."""
    return [
        name
        for name, data in listener.received
        if not (isinstance(data, dict) and data.get("name") == "barrier")
        and data != "New event has been organized: barrier"
    ]


async def test_new_event_reaches_websocket_and_polling_clients(
    http: httpx.AsyncClient, listen: Any
) -> None:
    over_websocket = await listen("websocket")
    over_polling = await listen("polling")
    event = await make_event(http, name="Jazz night", maxAttendees=50)
    for listener in (over_websocket, over_polling):
        text = await listener.wait_for("new-event")
        assert text == "New event has been organized: Jazz night"
        created = await listener.wait_for("event.created")
        assert created == payload_of(event)
        assert created["availableSeats"] == 50


async def test_few_seats_left_is_announced_after_each_registration(
    http: httpx.AsyncClient, listen: Any
) -> None:
    listener = await listen()
    event = await make_event(http, name="Tiny gig", maxAttendees=4)
    people = [await make_attendee(http) for _ in range(5)]
    assert (await register(http, event["id"], people[0]["id"])).status_code == 201  # 3 left
    for person in people[1:4]:  # 2, 1, 0 left
        assert (await register(http, event["id"], person["id"])).status_code == 201
    full = await register(http, event["id"], people[4]["id"])
    assert full.status_code == 409
    await barrier(http, listener)

    assert listener.of("event-availability") == [
        "Heads up! Seat is going to fill up for: Tiny gig. Only 2 is remaining",
        "Heads up! Seat is going to fill up for: Tiny gig. Only 1 is remaining",
        "Heads up! Seat is going to fill up for: Tiny gig. Only 0 is remaining",
    ]
    seats = [p for p in listener.of("event.availability") if p["eventId"] == event["id"]]
    assert seats == [
        {**payload_of(event), "availableSeats": n} for n in (2, 1, 0)
    ]  # not 3: a non-subscriber hears only of the last seats


async def test_failed_writes_broadcast_nothing(http: httpx.AsyncClient, listen: Any) -> None:
    event = await make_event(http, name="Duo", maxAttendees=2, location="Cellar")
    taken = await make_event(http, name="Other", location="Attic", date=event["date"])
    first, second, third = [await make_attendee(http) for _ in range(3)]
    assert (await register(http, event["id"], first["id"])).status_code == 201
    assert (await register(http, event["id"], second["id"])).status_code == 201
    listener = await listen()  # connected after the successful writes
    nobody = "3f1c2a8e-0000-4000-8000-000000000000"

    duplicate = {"name": "Copy", "date": event["date"], "location": "Cellar", "maxAttendees": 5}
    assert (await http.post("/event", json=duplicate)).status_code == 409
    assert (await http.post("/event", json={"name": "No date"})).status_code == 400
    assert (await register(http, event["id"], first["id"])).status_code == 409  # already
    assert (await register(http, event["id"], third["id"])).status_code == 409  # full
    assert (await register(http, nobody, third["id"])).status_code == 404
    lowered = await http.patch(f"/event/{event['id']}", json={"maxAttendees": 1})
    assert lowered.status_code == 409  # 2 seats already taken
    clash = await http.patch(f"/event/{taken['id']}", json={"location": "Cellar"})
    assert clash.status_code == 409
    assert (await http.delete(f"/event/{nobody}")).status_code == 404
    assert (await http.delete(f"/registration/{nobody}")).status_code == 404
    renamed = await http.patch(f"/event/{event['id']}", json={"name": "Trio"})
    assert renamed.status_code == 200
    await barrier(http, listener)

    # Of all these writes, only the rename was heard.
    assert heard(listener) == ["event.updated"]
    assert listener.of("event.updated")[0]["name"] == "Trio"


async def test_update_and_delete_are_announced(http: httpx.AsyncClient, listen: Any) -> None:
    listener = await listen()
    event = await make_event(http, name="Before", maxAttendees=10)
    changed = await http.patch(f"/event/{event['id']}", json={"name": "After", "maxAttendees": 6})
    assert changed.status_code == 200
    updated = await listener.wait_for("event.updated")
    assert updated == {**payload_of(event), "name": "After", "maxAttendees": 6, "availableSeats": 6}

    assert (await http.delete(f"/event/{event['id']}")).status_code == 200
    deleted = await listener.wait_for("event.deleted")
    assert deleted == updated


async def test_a_subscriber_follows_its_event_seat_by_seat(
    http: httpx.AsyncClient, listen: Any
) -> None:
    subscriber, bystander = await listen(), await listen()
    event = await make_event(http, name="Workshop", maxAttendees=10)
    elsewhere = await make_event(http, name="Elsewhere", maxAttendees=10)

    ack = await subscriber.ask("subscribe", {"eventId": event["id"]})
    assert ack == {"ok": True, "result": payload_of(event)}

    person = await make_attendee(http)
    taken = await register(http, event["id"], person["id"])
    assert taken.status_code == 201
    seat = await subscriber.wait_for("event.availability")
    assert seat == {**payload_of(event), "availableSeats": 9}

    freed = await http.delete(f"/registration/{taken.json()['result']['id']}")
    assert freed.status_code == 200
    await subscriber.wait_for("event.availability", lambda p: p["availableSeats"] == 10)

    assert (await http.patch(f"/event/{event['id']}", json={"maxAttendees": 12})).status_code == 200
    await subscriber.wait_for("event.availability", lambda p: p["maxAttendees"] == 12)

    # Another event's seats are not this subscriber's business.
    assert (await register(http, elsewhere["id"], person["id"])).status_code == 201

    unsubscribed = await subscriber.ask("unsubscribe", {"eventId": event["id"]})
    assert unsubscribed == {"ok": True, "result": {"eventId": event["id"]}}
    assert (await register(http, event["id"], person["id"])).status_code == 201
    await barrier(http, subscriber, bystander)

    availability = [p["availableSeats"] for p in subscriber.of("event.availability")]
    assert availability == [9, 10, 12]
    assert bystander.of("event.availability") == []


async def test_deleting_an_attendee_tells_subscribers_of_the_seats_freed(
    http: httpx.AsyncClient, listen: Any
) -> None:
    subscriber = await listen()
    event = await make_event(http, name="Cascade", maxAttendees=5)
    assert (await subscriber.ask("subscribe", {"eventId": event["id"]}))["ok"] is True
    person = await make_attendee(http)
    assert (await register(http, event["id"], person["id"])).status_code == 201
    await subscriber.wait_for("event.availability", lambda p: p["availableSeats"] == 4)

    deleted = await http.delete(f"/attendee/{person['id']}")
    assert deleted.status_code == 200
    freed = await subscriber.wait_for("event.availability", lambda p: p["availableSeats"] == 5)
    assert freed == {**payload_of(event), "availableSeats": 5}
    # The answer shows the event as the delete left it.
    assert deleted.json()["result"]["registrations"][0]["event"]["availableSeats"] == 5


async def test_bad_socket_input_is_answered_and_the_connection_survives(
    http: httpx.AsyncClient, listen: Any
) -> None:
    client = await listen()
    missing = "3f1c2a8e-0000-4000-8000-000000000000"
    cases = [
        (("subscribe", {"eventId": missing}), 404, f"Event with ID {missing} not found"),
        (("subscribe", {"eventId": "nope"}), 400, "eventId must be a UUID, got 'nope'"),
        (("subscribe", {"eventId": 42}), 400, "eventId must be a UUID string"),
        (("subscribe", {}), 400, "eventId must be a UUID string"),
        (("subscribe",), 400, 'Expected one object {"eventId": "<uuid>"}'),
        (("subscribe", "text"), 400, 'Expected one object {"eventId": "<uuid>"}'),
        (("subscribe", [1, 2]), 400, 'Expected one object {"eventId": "<uuid>"}'),
        (("unsubscribe", None, 3), 400, 'Expected one object {"eventId": "<uuid>"}'),
        (
            ("frobnicate", {"x": 1}),
            400,
            "Unknown message 'frobnicate'; this server accepts: subscribe, unsubscribe",
        ),
    ]
    for message, status, text in cases:
        ack = await client.ask(*message)
        assert ack == {
            "ok": False,
            "statusCode": status,
            "error": "Not Found" if status == 404 else "Bad Request",
            "message": text,
        }, message
    await client.sio.emit("frobnicate")  # no acknowledgement asked: nothing to answer

    # Still connected, still served.
    assert client.sio.connected
    event = await make_event(http, name="Still here")
    assert (await client.ask("subscribe", {"eventId": event["id"]}))["ok"] is True
    assert await client.wait_for("new-event") == "New event has been organized: Still here"


async def test_socket_io_handshake_allows_any_origin(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base) as client:
        response = await client.get(
            "/socket.io/",
            params={"EIO": "4", "transport": "polling"},
            headers={"Origin": "http://front.example"},
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://front.example"
    assert response.text.startswith("0{")  # an Engine.IO open packet
    assert '"websocket"' in response.text  # offered as the upgrade
