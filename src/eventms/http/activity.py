"""How many HTTP requests this process is answering, so that background work can wait
for a pause in the API's traffic.

`eventms serve` runs a mail worker in each of its processes (WORKER_IN_PROCESS). A
confirmation mail costs about three times the CPU of the registration that asked
for it (rendering, SMTP, its job's rows); sent during a burst of registrations, the
mails took 40 % of a 2-core machine and the API's throughput fell by as much. The
in-process worker now holds each mail while a request is being answered, for
WORKER_YIELD_SECONDS at most: a burst is answered first and its mails follow it,
and under endless load mails still go, a few a second. The standalone
`eventms worker` serves no requests and never waits.

Socket.IO's long-polls (held up to 45 s each) and WebSockets are not counted: a
connected browser is no load.
"""

from __future__ import annotations

import asyncio
from time import monotonic

from starlette.types import Scope

from eventms.realtime.server import SOCKET_PATH

# How often a held job looks again.
POLL = 0.01

_LONG_POLL = f"/{SOCKET_PATH}/"


class Activity:
    """The requests in flight in this process."""

    def __init__(self) -> None:
        self.in_flight = 0

    @staticmethod
    def counts(scope: Scope) -> bool:
        return scope["type"] == "http" and not scope["path"].startswith(_LONG_POLL)

    async def pause(self, longest: float) -> None:
        """Return once no request is in flight, or after `longest` seconds."""
        deadline = monotonic() + longest
        # Polled, not an Event: the count moves twice per request, on the hot path,
        # while a held mail looks at it a hundred times a second.
        while self.in_flight and monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(POLL)


# This process's requests (the front door counts them, `http.front`).
ACTIVITY = Activity()
