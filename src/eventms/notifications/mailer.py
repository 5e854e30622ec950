"""SMTP delivery (aiosmtplib), and the line between failures worth retrying and not.

The only module of eventms that speaks SMTP. A failure is either temporary (the
server is down or slow, or answered 4xx: try again later) or permanent (the server
answered 5xx for this recipient or this message: trying again cannot help).

A `Mailer` keeps its SMTP connections open between messages (one per job running at
once, since each job holds one while it sends): a new connection per mail costs a
TCP handshake, a greeting, EHLO and, in production, TLS and AUTH.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from email.message import EmailMessage
from typing import NoReturn

import aiosmtplib

from eventms.config import Settings

# Servers close idle SMTP sessions after a few minutes (RFC 5321 suggests >= 5).
MAX_IDLE_SECONDS = 60.0


class MailError(Exception):
    """A message could not be handed to the SMTP server."""


class TemporaryMailError(MailError):
    """Worth retrying: connection refused or lost, timeout, 4xx answer."""


class PermanentMailError(MailError):
    """Not worth retrying: 5xx answer for the recipient or the message."""


def _classify(code: int, message: str) -> MailError:
    text = f"SMTP {code} {message}".strip()
    return PermanentMailError(text) if 500 <= code < 600 else TemporaryMailError(text)


def _translate(error: BaseException) -> MailError | None:
    """The MailError an aiosmtplib/network failure means, or None for anything else."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        # One recipient per message: its refusal decides.
        refusal = error.recipients[0]
        return _classify(refusal.code, refusal.message)
    if isinstance(error, aiosmtplib.SMTPDataError):
        return _classify(error.code, error.message)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        # Any other answer (greeting, AUTH, our MAIL FROM refused, …) is about the
        # server or our own configuration, not this address: an operator can fix
        # it, so keep trying.
        return TemporaryMailError(f"SMTP {error.code} {error.message}")
    if isinstance(error, (TimeoutError, aiosmtplib.SMTPException, OSError)):
        return TemporaryMailError(f"{type(error).__name__}: {error}")
    return None


def _raise_translated(error: Exception) -> NoReturn:
    translated = _translate(error)
    if translated is None:
        raise error
    raise translated from error


def _went_stale(error: Exception) -> bool:
    """Did a kept connection turn out closed by the server (idle timeout, a limit of
    messages per connection, a restart)? 421 is SMTP's "closing this channel"."""
    if isinstance(error, (aiosmtplib.SMTPServerDisconnected, ConnectionError)):
        return True
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return any(r.code == 421 for r in error.recipients)
    return isinstance(error, aiosmtplib.SMTPResponseException) and error.code == 421


class Mailer:
    """Sends messages over SMTP connections it keeps open and reopens when needed.

    A connection goes back to the idle list only after a message went through on it:
    one that failed, timed out or was cancelled mid-exchange is closed, since its
    state is unknown. A kept connection that the server has closed meanwhile is
    replaced once, at once and transparently; every other failure is raised, as a
    MailError, exactly as a fresh connection would raise it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # and when last used

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user or None,
            password=s.smtp_password or None,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            timeout=s.smtp_timeout,
        )

    async def send(self, message: EmailMessage) -> None:
        """Hand `message` to the configured SMTP server, or raise a MailError."""
        if not self.settings.smtp_host:
            raise TemporaryMailError("no SMTP server configured (SMTP_HOST)")
        kept = self._take_idle()
        if kept is not None:
            try:
                await self._send_on(kept, message)
                return
            except Exception as error:
                if not _went_stale(error):
                    _raise_translated(error)
                # Gone before our message was taken: a new connection, once.
        client = self._new_client()
        try:
            try:
                await client.connect()
            except BaseException:
                client.close()
                raise
            await self._send_on(client, message)
        except Exception as error:
            _raise_translated(error)

    def _take_idle(self) -> aiosmtplib.SMTP | None:
        now = time.monotonic()
        while self._idle:
            client, used = self._idle.pop()
            # aiosmtplib notices an EOF the server sent; a connection dropped without
            # one (a NAT or firewall forgetting it) would cost an SMTP_TIMEOUT wait
            # and a retry, so one idle for long is not trusted.
            if client.is_connected and now - used < MAX_IDLE_SECONDS:
                return client
            client.close()
        return None

    async def _send_on(self, client: aiosmtplib.SMTP, message: EmailMessage) -> None:
        try:
            await client.send_message(message)
        except BaseException:  # CancelledError too: a half-sent exchange
            client.close()
            raise
        self._idle.append((client, time.monotonic()))

    async def close(self) -> None:
        """Say QUIT on every idle connection (politely, but not for long)."""
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(client) for client, _ in idle))


async def _quit(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.quit(), timeout=2)
    client.close()
