"""`eventms worker` child processes for the tests, stopped (or killed) by the test."""

from __future__ import annotations

import subprocess
import sys

from tests.support.mail import worker_env
from tests.support.paths import ROOT


class Workers:
    def __init__(self, database_url: str, redis_url: str, smtp_port: int) -> None:
        self.env = worker_env(database_url, redis_url, smtp_port)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, concurrency: int) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "eventms", "worker", "--concurrency", str(concurrency)],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
