"""The write tracker the in-process mail worker gives way to (eventms.http.activity)."""

from __future__ import annotations

import asyncio
import time

from eventms.http.activity import QUIET_SECONDS, WriteActivity


async def test_give_way_returns_at_once_when_no_write_runs() -> None:
    writes = WriteActivity()
    started = time.monotonic()
    await writes.give_way(30)
    assert time.monotonic() - started < QUIET_SECONDS


async def test_give_way_waits_for_the_writes_then_a_quiet_moment() -> None:
    writes = WriteActivity()
    released = 0.0

    async def one_write(seconds: float) -> None:
        nonlocal released
        with writes.writing():
            await asyncio.sleep(seconds)
        released = max(released, time.monotonic())

    burst = [asyncio.create_task(one_write(0.2 + 0.1 * n)) for n in range(3)]
    await asyncio.sleep(0.05)
    assert writes.in_flight == 3
    await writes.give_way(30)
    assert writes.in_flight == 0
    assert time.monotonic() - released >= QUIET_SECONDS
    await asyncio.gather(*burst)


async def test_a_spell_longer_than_the_patience_is_not_waited_out() -> None:
    writes = WriteActivity()
    with writes.writing():
        started = time.monotonic()
        await writes.give_way(0.3)
        waited = time.monotonic() - started
        assert writes.in_flight == 1
    assert 0.25 <= waited < 2


async def test_no_patience_means_no_wait() -> None:
    writes = WriteActivity()
    with writes.writing():
        started = time.monotonic()
        await writes.give_way(0)
        assert time.monotonic() - started < 0.05
