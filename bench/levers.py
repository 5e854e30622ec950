"""Each lever measured on its own: the same `run.py` workloads against several commits
of eventms, one after the other in one run, reported side by side.

    python bench/levers.py BASE COMMIT... [-- run.py options]

Every commit is checked out (a detached git worktree under var/levers/) and served from
its own `src/` (PYTHONPATH), with this checkout's bench and virtualenv; the options after
`--` go to `run.py` (default: `--workers 1 --cache on --only event_by_id`). The table
gives, per commit, each endpoint's req/s, p99 and server CPU ms per request, and the
CPU ratio to the first commit (> 1: cheaper). CPU per request is the steadier figure on
a shared machine; run the list twice (`--repeat 2`) to see the noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "levers"
DEFAULT = ["--workers", "1", "--cache", "on", "--only", "event_by_id"]


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def checkout(commit: str) -> tuple[str, str, Path]:
    sha = _git("rev-parse", "--short", commit)
    subject = _git("log", "-1", "--format=%s", sha)
    tree = WORK / sha
    if not tree.exists():
        _git("worktree", "add", "--detach", str(tree), sha)
    return sha, subject, tree


def measure(tree: Path, options: list[str], results: Path) -> dict[str, Any]:
    before = set(results.glob("*.json"))
    env = {"PYTHONPATH": str(tree / "src")}
    argv = [sys.executable, str(ROOT / "bench" / "run.py"), "--results", str(results), *options]
    subprocess.run(argv, check=True, env={**os.environ, **env})
    (made,) = set(results.glob("*.json")) - before
    data: dict[str, Any] = json.loads(made.read_text())
    return data


def main() -> None:
    argv = sys.argv[1:]
    options = DEFAULT
    if "--" in argv:
        cut = argv.index("--")
        argv, options = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("commits", nargs="+")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = WORK / f"results-{stamp}"
    results.mkdir()
    trees = [checkout(c) for c in args.commits]
    rows: list[tuple[int, str, str, dict[str, Any]]] = []
    for round_ in range(args.repeat):
        for sha, subject, tree in trees:
            print(f"\n=== {sha} {subject[:70]} (round {round_ + 1})", flush=True)
            rows.append((round_, sha, subject, measure(tree, options, results)))
    lines = [
        f"# Levers {stamp}",
        "",
        f"run.py options: `{' '.join(options)}`",
        "",
        "| round | commit | change | workers | endpoint | req/s | p99 ms | server CPU ms/req "
        "| CPU ratio to first |",
        "|---|---|---|---:|---|---:|---:|---:|---:|",
    ]
    first: dict[tuple[int, str], float] = {}
    for round_, sha, subject, data in rows:
        for one in data["passes"]:
            for run in one["runs"]:
                if run.get("other") or run["key"] in ("ceiling", "fastapi"):
                    continue
                cpu = run["cpu_ms_per_request"]["server"]
                base = first.setdefault((one["workers"], run["key"]), cpu)
                lines.append(
                    f"| {round_ + 1} | `{sha}` | {subject[:60]} | {one['workers']} | "
                    f"{run['label']} | {run['rps']:,.0f} | {run['p99_ms']:.1f} | {cpu:.3f} | "
                    f"{base / cpu if cpu else 0:.2f}x |"
                )
    out = ROOT / "bench" / "results" / f"levers-{stamp}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
