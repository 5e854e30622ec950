"""`eventms serve` in a child process, for the tests that need real sockets and processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping

from eventms.loopback import NotReady, free_port, wait_until_ready
from tests.support.paths import ROOT


class LiveServer:
    """`eventms serve` on a free loopback port, on the given database and Redis.

    `env` adds settings (e.g. SHUTDOWN_TIMEOUT="10"); the database and Redis are
    always the ones passed, so that no test talks to an engine it did not name.
    """

    # The command line of the compose file's api service (tests/test_container.py checks).
    COMMAND = ("serve",)

    # What "started" means: ready (a subclass may wait only for /health).
    READY_PATH = "/ready"

    def __init__(
        self,
        database_url: str,
        redis_url: str,
        *,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
        **more_env: str,
    ) -> None:
        env = {**(env or {}), **more_env}
        named = {"DATABASE_URL", "REDIS_URL"} & set(env)
        if named:
            raise TypeError(f"pass {', '.join(sorted(named))} as arguments, not as env")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # Its own metrics directory: `serve` empties it at start, and two servers
        # sharing one would mix their counters.
        self.metrics_dir = tempfile.mkdtemp(prefix="eventms-metrics-")
        environment = {
            **os.environ,
            "APP_ENV": "test",
            "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
            # Mail workers run only where a test starts one (tests/mail/).
            "WORKER_IN_PROCESS": "false",
            # A budget no test reaches by accident.
            "RATE_LIMITER_MAX_TRY": "1000000",
            "SIGNUP_RATE_LIMIT_MAX_TRY": "1000000",
            **env,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
        }
        # Logs go to a file, not a pipe: an undrained pipe fills up and blocks the server.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eventms",
                *self.COMMAND,
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=environment,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        try:
            wait_until_ready(f"{self.base}{self.READY_PATH}", self.process)
        except NotReady as error:
            self.stop()
            raise RuntimeError(f"server {error}: {self.output()[-2000:]}") from error

    def output(self) -> str:
        """Everything the server has logged so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
