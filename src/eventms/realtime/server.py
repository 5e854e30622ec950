"""The Socket.IO server, on the API's own ASGI app and port, at `/socket.io/`.

Clients of the original connect with `io(url, {transports: ["websocket"]})` and only
listen; ours may also send `subscribe` / `unsubscribe` with `{"eventId": uuid}` to
join an event's room. Every message a client sends is answered with an
acknowledgement `{"ok": true, ...}` or `{"ok": false, "statusCode", "error",
"message"}` (the HTTP error envelope's fields); bad input never drops the
connection.

With Redis configured, broadcasts go through python-socketio's Redis manager
(pub/sub), so a client connected to any instance or worker process hears every
broadcast; without it, an in-memory manager serves a single process.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import socketio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eventms.config import Settings
from eventms.events.models import Event
from eventms.observability import metrics
from eventms.realtime.messages import event_payload, event_room
from eventms.realtime.redis_manager import RedisManager

log = logging.getLogger("eventms.realtime")

Ack = dict[str, Any]
SOCKET_PATH = "socket.io"
ACCEPTED = ("subscribe", "unsubscribe")


class BadMessage(Exception):
    """A client message this server cannot act on; answered, never raised further."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def ok(result: Any = None) -> Ack:
    return {"ok": True, "result": result}


def refusal(status: int, message: str) -> Ack:
    return {
        "ok": False,
        "statusCode": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
    }


def parse_event_id(args: tuple[Any, ...]) -> uuid.UUID:
    """The `eventId` of a `subscribe`/`unsubscribe` message: one object, one uuid."""
    if len(args) != 1 or not isinstance(args[0], dict):
        raise BadMessage(400, 'Expected one object {"eventId": "<uuid>"}')
    raw = args[0].get("eventId")
    if not isinstance(raw, str):
        raise BadMessage(400, "eventId must be a UUID string")
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BadMessage(400, f"eventId must be a UUID, got {raw!r}") from None


Handler = Callable[..., Awaitable[Ack]]


def answering(handler: Handler) -> Handler:
    """Turn whatever a handler raises into an error acknowledgement."""

    async def guarded(*args: Any) -> Ack:
        try:
            return await handler(*args)
        except BadMessage as error:
            return refusal(error.status, error.message)
        except Exception:
            log.exception("Socket.IO handler %s failed", handler.__name__)
            return refusal(500, "Internal server error")

    guarded.__name__ = handler.__name__
    return guarded


def client_manager(settings: Settings) -> socketio.AsyncManager:
    redis = settings.redis_location()
    if redis is None:
        return socketio.AsyncManager()
    return RedisManager(redis, channel=settings.realtime_channel)


class RealtimeServer:
    """The Socket.IO server and the `Broadcaster` the services announce through."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins="*",
            client_manager=client_manager(settings),
            transports=["polling", "websocket"],
            logger=False,
            engineio_logger=False,
        )
        self.sio.on("subscribe", answering(self.subscribe))
        self.sio.on("unsubscribe", answering(self.unsubscribe))
        self.sio.on("*", answering(self.unknown_message))
        self.sio.on("connect", self._count_connect)
        self.sio.on("disconnect", self._count_disconnect)

    async def _count_connect(self, sid: str, environ: Any, auth: Any = None) -> None:
        metrics.socketio_connected()

    async def _count_disconnect(self, sid: str, *args: Any) -> None:
        metrics.socketio_disconnected()

    @property
    def uses_redis(self) -> bool:
        return isinstance(self.sio.manager, socketio.AsyncRedisManager)

    def asgi(self, other_app: Any) -> socketio.ASGIApp:
        """The ASGI app serving Socket.IO at `/socket.io/` and `other_app` elsewhere."""
        return socketio.ASGIApp(self.sio, other_asgi_app=other_app, socketio_path=SOCKET_PATH)

    async def broadcast(self, message: str, payload: Any, *, room: str | None = None) -> None:
        await self.sio.emit(message, payload, to=room)

    async def close(self) -> None:
        await self.sio.shutdown()

    async def subscribe(self, sid: str, *args: Any) -> Ack:
        event_id = parse_event_id(args)
        room = event_room(str(event_id))
        # Join first, then read: a change committed in between is then sent to us
        # rather than lost between the read and the join.
        await self.sio.enter_room(sid, room)
        event = await self._find_event(event_id)
        if event is None:
            await self.sio.leave_room(sid, room)
            raise BadMessage(404, f"Event with ID {event_id} not found")
        return ok(event_payload(event))

    async def unsubscribe(self, sid: str, *args: Any) -> Ack:
        event_id = parse_event_id(args)
        await self.sio.leave_room(sid, event_room(str(event_id)))
        return ok({"eventId": str(event_id)})

    async def unknown_message(self, message: str, sid: str, *args: Any) -> Ack:
        accepted = ", ".join(ACCEPTED)
        raise BadMessage(400, f"Unknown message {message!r}; this server accepts: {accepted}")

    async def _find_event(self, event_id: uuid.UUID) -> Event | None:
        async with self.sessions() as session:
            return await session.get(Event, event_id)
