"""Load generators: `wrk` with bench/wrk.lua when installed, else several processes of
raw asyncio HTTP/1.1 keep-alive connections (far cheaper per request than an HTTP
client library, though still several times dearer than wrk).

Both read the same request file (one "METHOD<TAB>PATH<TAB>BODY" a line), keep
`connections` connections busy for `duration` seconds and give back a `Load`.
The CPU the generator itself used is measured too, to show it was not the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit

LUA = Path(__file__).resolve().parent / "wrk.lua"


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors and timeouts
    non_2xx: int
    statuses: dict[str, int] = field(default_factory=dict)  # only when counted
    generator_cpu_s: float = 0.0
    bytes: int = 0  # received, headers included

    @property
    def bytes_per_response(self) -> float:
        return self.bytes / self.requests if self.requests else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pick(preference: str) -> str:
    """'wrk' or 'python': wrk when asked for or, with 'auto', when it is on PATH."""
    if preference == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if preference == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--generator wrk: wrk is not installed (apt-get install wrk)")
    return preference


def run(
    generator: str,
    base: str,
    requests_file: Path,
    *,
    connections: int,
    duration: float,
    threads: int,
    count_status: bool = False,
) -> Load:
    before = _children_cpu()
    if generator == "wrk":
        load = _run_wrk(base, requests_file, connections, duration, threads, count_status)
    else:
        load = _run_python(base, requests_file, connections, duration, threads)
    load.generator_cpu_s = _children_cpu() - before
    return load


def _run_wrk(
    base: str, requests_file: Path, connections: int, duration: float, threads: int, count: bool
) -> Load:
    threads = max(1, min(threads, connections))
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base,
        "--",
        str(requests_file),
        str(threads),
    ]
    env = {**os.environ, "WRK_COUNT_STATUS": "1" if count else "0"}
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if out.returncode != 0 or line is None:
        said = f"{out.stdout[-800:]} {out.stderr[-800:]}"
        raise RuntimeError(f"wrk failed ({out.returncode}): {said}")
    figures = json.loads(line.removeprefix("WRK_JSON "))
    errors = figures["errors"]
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        non_2xx=errors["status"],
        statuses=figures["statuses"],
        bytes=figures["bytes"],
    )


# --- the Python fallback ---------------------------------------------------------------


def _read_requests(requests_file: Path, host: str) -> list[bytes]:
    made = []
    for line in requests_file.read_text().splitlines():
        method, path, body = [*line.split("\t"), "", ""][:3]
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
        if body:
            data = body.encode()
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            made.append(head.encode() + b"\r\n" + data)
        else:
            made.append(head.encode() + b"\r\n")
    return made


class _Client(asyncio.Protocol):
    """One keep-alive connection: send, read one whole answer, record, send the next."""

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(self.worker.next_request())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = 0
        for header in self.buffer[:end].split(b"\r\n")[1:]:
            if header[:15].lower() == b"content-length:":
                length = int(header[15:])
                break
        if len(self.buffer) < end + 4 + length:
            return
        now = time.perf_counter()
        self.worker.received += end + 4 + length
        self.worker.record(int(self.buffer[9:12]), now - self.sent_at)
        self.buffer = self.buffer[end + 4 + length :]
        if now < self.worker.stop_at:
            self._send()
        elif self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.closed(self, exc)


class _Worker:
    def __init__(self, requests: list[bytes], stop_at: float) -> None:
        self.requests = requests
        self.position = 0
        self.stop_at = stop_at
        self.latencies = array("d")
        self.statuses: dict[str, int] = {}
        self.errors = 0
        self.received = 0
        self.open: set[_Client] = set()
        self.finished = asyncio.get_running_loop().create_future()

    def next_request(self) -> bytes:
        self.position = (self.position + 1) % len(self.requests)
        return self.requests[self.position]

    def record(self, status: int, seconds: float) -> None:
        self.latencies.append(seconds)
        key = str(status)
        self.statuses[key] = self.statuses.get(key, 0) + 1

    def closed(self, client: _Client, exc: Exception | None) -> None:
        if exc is not None or time.perf_counter() < self.stop_at:
            self.errors += 1
        self.open.discard(client)
        if not self.open and not self.finished.done():
            self.finished.set_result(None)


async def _drive(host: str, port: int, requests: list[bytes], connections: int, duration: float):
    loop = asyncio.get_running_loop()
    worker = _Worker(requests, time.perf_counter() + duration)
    for _ in range(connections):
        _, client = await loop.create_connection(lambda: _Client(worker), host, port)
        worker.open.add(client)  # type: ignore[arg-type]
    started = time.perf_counter()
    try:
        await asyncio.wait_for(worker.finished, duration + 15)
    except TimeoutError:
        worker.errors += len(worker.open)
    return worker, time.perf_counter() - started


def _process(
    host: str, port: int, requests: list[bytes], connections: int, duration: float, out: Connection
) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    worker, seconds = asyncio.run(_drive(host, port, requests, connections, duration))
    out.send((worker.latencies.tobytes(), worker.statuses, worker.errors, seconds, worker.received))
    out.close()


def _run_python(
    base: str, requests_file: Path, connections: int, duration: float, processes: int
) -> Load:
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    requests = _read_requests(requests_file, url.netloc)
    processes = max(1, min(processes, connections))
    context = multiprocessing.get_context("fork")
    jobs = []
    for index in range(processes):
        share = connections // processes + (1 if index < connections % processes else 0)
        mine = requests[index::processes] or requests[:1]
        receive, send = context.Pipe(duplex=False)
        job = context.Process(target=_process, args=(host, port, mine, share, duration, send))
        job.start()
        jobs.append((job, receive))
    latencies = array("d")
    statuses: dict[str, int] = {}
    errors, seconds, received = 0, 0.0, 0
    for job, receive in jobs:
        raw, seen, failed, took, got = receive.recv()
        received += got
        job.join()
        latencies.frombytes(raw)
        for status, n in seen.items():
            statuses[status] = statuses.get(status, 0) + n
        errors += failed
        seconds = max(seconds, took)
    ordered = sorted(latencies)

    def percentile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    return Load(
        requests=len(ordered),
        seconds=seconds,
        p50_ms=percentile(0.50),
        p99_ms=percentile(0.99),
        errors=errors,
        non_2xx=sum(n for s, n in statuses.items() if not s.startswith(("2", "3"))),
        statuses=statuses,
        bytes=received,
    )
