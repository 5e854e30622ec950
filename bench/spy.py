"""py-spy the server while a load runs, and summarise where its Python time goes.

Samples are of running (not idle) threads only, so they show the CPU a worker spends
per request: by package (self time) and the functions with the most self time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(
    pid: int, out: Path, drive: Callable[[], Any], seconds: float = 10
) -> dict[str, Any] | None:
    """Sample process `pid` and its children while `drive()` loads it; summarise."""
    recorder = _start(pid, out, seconds)
    try:
        time.sleep(0.5)  # let py-spy attach before the load starts
        drive()
        recorder.wait(30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.wait()
    if not out.exists():
        assert recorder.stderr is not None
        print(f"  py-spy gave no profile: {recorder.stderr.read().decode()[-500:]}")
        return None
    return summarise(out)


def _start(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy is not installed: `make bench` installs the bench extra")
    return subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",  # the uvicorn workers
            "--nonblocking",  # do not pause the server for each sample
            "--rate",
            "200",
            "--duration",
            str(max(1, round(seconds))),
            "--full-filenames",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _package(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/eventms/" in path or path.startswith("eventms/"):
        return "eventms"
    match = re.search(r"python3\.\d+/([^/]+)", path)
    if match:
        return "stdlib:" + match.group(1).removesuffix(".py")
    return path.rsplit("/", 1)[-1] or "?"


def summarise(raw: Path, top: int = 15) -> dict[str, Any]:
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [m for f in stack.split(";") if (m := FRAME.match(f)) and m.group("line")]
        if not frames:
            continue
        samples += count
        leaf = frames[-1]
        by_package[_package(leaf.group("file"))] += count
        by_function[f"{leaf.group('func')} ({_short(leaf.group('file'))})"] += count
        for name in {f"{m.group('func')} ({_short(m.group('file'))})" for m in frames}:
            inclusive[name] += count
    text = ["self time by package:"]
    text += [f"  {n / samples:6.1%}  {name}" for name, n in by_package.most_common(top)]
    text += ["self time by function:"]
    text += [f"  {n / samples:6.1%}  {name}" for name, n in by_function.most_common(top)]
    text += ["inclusive time, eventms functions:"]
    ours = [
        (name, n)
        for name, n in inclusive.most_common()
        if name.split("(")[-1].startswith("eventms")
        and "cli.py" not in name
        and "__main__" not in name
    ]
    text += [f"  {n / samples:6.1%}  {name}" for name, n in ours[:top]]
    return {
        "samples": samples,
        "by_package": dict(by_package.most_common(top)),
        "by_function": dict(by_function.most_common(top)),
        "inclusive_eventms": dict(ours[:top]),
        "text": "\n".join(text),
    }


def _short(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    if "/eventms/" in path:
        return "eventms/" + path.split("/eventms/", 1)[1]
    return path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1] if "/" in path else path
