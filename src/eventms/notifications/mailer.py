"""SMTP delivery (aiosmtplib), and the line between failures worth retrying and not.

The only module of eventms that speaks SMTP. A failure is either temporary (the
server is down or slow, or answered 4xx: try again later) or permanent (the server
answered 5xx for this recipient or this message: trying again cannot help).
"""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from eventms.config import Settings


class MailError(Exception):
    """A message could not be handed to the SMTP server."""


class TemporaryMailError(MailError):
    """Worth retrying: connection refused or lost, timeout, 4xx answer."""


class PermanentMailError(MailError):
    """Not worth retrying: 5xx answer for the recipient or the message."""


def _classify(code: int, message: str) -> MailError:
    text = f"SMTP {code} {message}".strip()
    return PermanentMailError(text) if 500 <= code < 600 else TemporaryMailError(text)


async def send_message(settings: Settings, message: EmailMessage) -> None:
    """Hand `message` to the configured SMTP server, or raise a MailError."""
    if not settings.smtp_host:
        raise TemporaryMailError("no SMTP server configured (SMTP_HOST)")
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user or None,
            password=settings.smtp_password or None,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            timeout=settings.smtp_timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as error:
        # One recipient per message: its refusal decides.
        refusal = error.recipients[0]
        raise _classify(refusal.code, refusal.message) from error
    except aiosmtplib.SMTPDataError as error:
        raise _classify(error.code, error.message) from error
    except aiosmtplib.SMTPResponseException as error:
        # Any other answer (greeting, AUTH, our MAIL FROM refused, …) is about the
        # server or our own configuration, not this address: an operator can fix
        # it, so keep trying.
        raise TemporaryMailError(f"SMTP {error.code} {error.message}") from error
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
        raise TemporaryMailError(f"{type(error).__name__}: {error}") from error
