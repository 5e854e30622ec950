"""Server-side request forgery: a webhook URL must not lead eventms to its own
network. A URL whose host resolves to any address that is not globally routable
(loopback, private, link-local such as 169.254.169.254 the cloud metadata service,
unique-local, multicast, reserved) is refused, unless WEBHOOK_ALLOW_PRIVATE.

Checked when an endpoint is created or changed and again before every attempt (a
name can be pointed elsewhere after it was checked).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeUrl(Exception):
    """The URL may not be called; the message says why."""


def _not_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UnsafeUrl if `url` is not http(s) or resolves to a non-public address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("must be an http:// or https:// URL with a host")
    if allow_private:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except OSError as error:
        raise UnsafeUrl(f"its host {parts.hostname} does not resolve ({error})") from None
    for *_, address in found:
        if _not_public(str(address[0])):
            raise UnsafeUrl(
                f"its host {parts.hostname} resolves to {address[0]}, a loopback, private"
                " or link-local address (WEBHOOK_ALLOW_PRIVATE=true allows it)"
            )
