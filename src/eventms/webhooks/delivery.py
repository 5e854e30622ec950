"""One delivery attempt: check the URL again, sign, POST, read the status only.

No redirect is followed (a 3xx is a failure: the receiver must give its final URL),
the whole attempt has WEBHOOK_TIMEOUT_SECONDS, the answer's body is never read, and
no proxy is taken from the environment (the address checked is the one called).
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from eventms.webhooks.addresses import UnsafeUrl, check_url
from eventms.webhooks.signing import signed_headers

USER_AGENT = "eventms-webhooks/1"
_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: building one (loading the CA bundle)
    costs tens of milliseconds, more than a delivery to a near receiver."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


@dataclass(frozen=True)
class Attempt:
    status_code: int | None  # None: no answer (refused, timed out, connection failed)
    error: str | None
    retry_after: float | None = None  # seconds the receiver asked us to wait

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def attempt(
    *, url: str, secret: str, msg_id: str, body: str, timeout_seconds: float, allow_private: bool
) -> Attempt:
    try:
        await check_url(url, allow_private=allow_private)
    except UnsafeUrl as refused:
        return Attempt(None, f"URL refused: {refused}")
    headers = {
        **signed_headers(secret, msg_id, int(time.time()), body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    try:
        async with (
            httpx.AsyncClient(
                timeout=timeout_seconds, follow_redirects=False, trust_env=False
            ) as client,
            client.stream("POST", url, content=body.encode(), headers=headers) as response,
        ):
            status = response.status_code
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
    except httpx.TimeoutException:
        return Attempt(None, f"no answer within {timeout_seconds:g} s")
    except httpx.HTTPError as error:
        return Attempt(None, f"{type(error).__name__}: {error}"[:500])
    if 200 <= status < 300:
        return Attempt(status, None)
    what = f"answered {status}"
    if 300 <= status < 400:
        what += " (redirects are not followed)"
    return Attempt(status, what, retry_after)
