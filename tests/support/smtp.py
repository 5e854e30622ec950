"""A real SMTP server for the tests: aiosmtpd on a loopback port, keeping what it got.

`refuse` makes it answer RCPT with a given reply (e.g. "451 4.3.0 try later" or
"550 5.1.1 no such user") for the next `refusals` recipients, to play a sick server.
`delay` makes it take that many seconds over each DATA (a slow server); with
`close_after=N` it takes N messages per connection, then answers the next MAIL with
421 and hangs up (as servers limiting messages per connection do). `connections`
counts the connections that delivered mail.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from eventms.loopback import free_port


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.refuse: str | None = None
        self.refusals = 0
        self.delay = 0.0
        self.close_after: int | None = None
        # Per connection (aiosmtpd's session object, kept alive here): messages taken.
        self.sessions: dict[int, tuple[Any, int]] = {}

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self.lock:
            taken = self.sessions.get(id(session), (session, 0))[1]
            if self.close_after is not None and taken >= self.close_after:
                asyncio.get_running_loop().call_soon(server.transport.close)
                return "421 4.7.0 enough messages on this connection, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self.lock:
            if self.refuse and self.refusals > 0:
                self.refusals -= 1
                return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
            taken = self.sessions.get(id(session), (session, 0))[1]
            self.sessions[id(session)] = (session, taken + 1)
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(
        self, port: int | None = None, *, delay: float = 0.0, close_after: int | None = None
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._recorder = _Recorder()
        self._recorder.delay = delay
        self._recorder.close_after = close_after
        self._controller: Controller | None = None

    def start(self) -> SmtpSink:
        self._controller = Controller(self._recorder, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuse(self, reply: str, times: int = 1_000_000) -> None:
        with self._recorder.lock:
            self._recorder.refuse = reply
            self._recorder.refusals = times

    @property
    def messages(self) -> list[EmailMessage]:
        with self._recorder.lock:
            return list(self._recorder.messages)

    @property
    def delay(self) -> float:
        return self._recorder.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._recorder.delay = seconds

    @property
    def connections(self) -> int:
        with self._recorder.lock:
            return len(self._recorder.sessions)

    def wait_for(self, count: int, timeout: float = 60) -> list[EmailMessage]:
        """The messages once there are at least `count` (or whatever came by `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


def body_text(message: EmailMessage, subtype: str = "plain") -> str:
    """The text of the message's text/`subtype` part; fails when it has none."""
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    content: str = part.get_content()
    return content


def by_subject(messages: list[EmailMessage], subject: str) -> list[EmailMessage]:
    return [m for m in messages if m["Subject"] == subject]


def parts(message: EmailMessage) -> tuple[str, str, list[EmailMessage]]:
    """(plain text, HTML, attachments) of a mail."""
    attachments = list(message.iter_attachments())
    return body_text(message, "plain"), body_text(message, "html"), attachments
