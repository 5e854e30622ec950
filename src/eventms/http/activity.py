"""How busy this process is answering writes, for work that should give way to them.

The in-process mail worker (WORKER_IN_PROCESS) shares its process, and so its CPU,
with the API: every confirmation it renders and sends while registrations pour in
slows their answers. So it holds its mails while this process is answering writes
and sends them once the writes stop: a burst of registrations is answered first,
and its mails follow. A busy spell that lasts longer than the worker's patience
(WORKER_YIELD_SECONDS) is load, not a burst: the mails then go as they come.

One tracker per process (`WRITES`): the requests counted and the worker that reads
it share this process, and that is the point.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

# A spell of writes ends after this long without one: the gaps between the requests
# of a burst are far shorter.
QUIET_SECONDS = 0.05
POLL_SECONDS = 0.02


class WriteActivity:
    def __init__(self) -> None:
        self.in_flight = 0
        self._last_end = float("-inf")
        self._busy_since = float("-inf")

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Count a write request for as long as the block runs."""
        now = time.monotonic()
        if self.in_flight == 0 and now - self._last_end >= QUIET_SECONDS:
            self._busy_since = now  # a new busy spell
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._last_end = time.monotonic()

    def quiet(self) -> bool:
        return self.in_flight == 0 and time.monotonic() - self._last_end >= QUIET_SECONDS

    async def give_way(self, patience: float) -> None:
        """Return once no write has been answered for QUIET_SECONDS, or once the
        current busy spell has lasted `patience` seconds (at once when 0)."""
        # A poll, not an Event: "quiet" is a matter of time passing, and the tracker
        # outlives event loops (an Event binds to the first loop that waits on it).
        while not self.quiet() and time.monotonic() - self._busy_since < patience:  # noqa: ASYNC110
            await asyncio.sleep(POLL_SECONDS)


WRITES = WriteActivity()
