"""Servers started on this machine: a free port for one, and waiting until it answers.

Used by the embedded SMTP sink, and by the tests and benchmarks that start
`eventms serve` in a child process.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
import urllib.request
from typing import Any


class NotReady(RuntimeError):
    """The server exited, or did not answer in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at `host` right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_until_ready(
    url: str, process: subprocess.Popen[Any], timeout: float = 30, interval: float = 0.2
) -> None:
    """Poll GET `url` until it answers 200; raise NotReady if `process` exits first
    or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotReady(f"exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        # Refused, reset or timed out, or an error status (urllib's HTTPError) while starting.
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(interval)
    raise NotReady(f"{url} did not answer 200 within {timeout:g} s")
