"""The mail worker inside an API process (WORKER_IN_PROCESS) gives way to that
process's writes: a burst of registrations is answered first, its mails follow."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time

from eventms.config import Settings
from eventms.http.activity import WRITES
from eventms.notifications.jobs import MAIL_QUEUE
from eventms.notifications.worker import run_worker
from tests.support.api import make_attendee, make_event, register
from tests.support.smtp import SmtpSink


async def test_a_worker_inside_the_api_sends_once_the_writes_stop(
    client, db, sink: SmtpSink, mail_settings: Settings
) -> None:
    """The in-process worker holds its mails while its process answers writes (here:
    one held open), sends them once the writes stop, and sends each once."""
    event = await make_event(client)
    people = [await make_attendee(client) for _ in range(3)]
    for person in people:
        assert (await register(client, event["id"], person["id"])).status_code == 201
    settings = mail_settings.model_copy(update={"worker_yield_seconds": 30})
    worker = asyncio.create_task(
        run_worker(settings, install_signal_handlers=False, gives_way=True, queues=[MAIL_QUEUE])
    )
    try:
        with WRITES.writing():
            await asyncio.sleep(1.5)
            assert sink.messages == []  # held while a write runs
        await asyncio.to_thread(sink.wait_for, 3, 20)  # the worker runs on this loop
        await asyncio.sleep(0.5)  # and would a fourth come?
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    received = collections.Counter(m["To"].addresses[0].addr_spec for m in sink.messages)
    assert received == collections.Counter(p["email"] for p in people)


async def test_a_worker_inside_the_api_waits_no_longer_than_its_patience(
    client, sink: SmtpSink, mail_settings: Settings
) -> None:
    event = await make_event(client)
    person = await make_attendee(client)
    assert (await register(client, event["id"], person["id"])).status_code == 201
    settings = mail_settings.model_copy(update={"worker_yield_seconds": 1})
    worker = asyncio.create_task(
        run_worker(settings, install_signal_handlers=False, gives_way=True, queues=[MAIL_QUEUE])
    )
    try:
        with WRITES.writing():  # a spell of writes that does not end
            started = time.monotonic()
            assert len(await asyncio.to_thread(sink.wait_for, 1, 20)) == 1
            assert time.monotonic() - started < 15
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
