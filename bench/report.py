"""Turn measured runs into fractions of the ceiling, a markdown table and a JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def fraction(rps: float, ceiling: float) -> float:
    return rps / ceiling if ceiling else 0.0


def verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return "met" if value >= target else "MISSED"


def _pct(value: float) -> str:
    return f"{value * 100:.2f}%" if value < 0.1 else f"{value * 100:.1f}%"


def console_line(run: dict[str, Any]) -> str:
    cores, db = run["cpu_cores"], run["db"]
    line = (
        f"  {run['label']:32} {run['rps']:>8,.0f} req/s  p50 {run['p50_ms']:6.1f} ms  "
        f"p99 {run['p99_ms']:6.1f} ms  non-2xx {run['non_2xx']}  errors {run['errors']}  "
        f"cores: server {cores['server']:.2f} pg {cores.get('postgres', 0):.2f} "
        f"generator {cores['generator']:.2f} machine {cores['machine']:.2f}"
    )
    if db:
        line += (
            f"  db: {db['transactions_per_request']:.2f} xact/request, "
            f"{db['new_sessions']} new sessions"
        )
    return line


def _cores(cpu: dict[str, float], key: str) -> str:
    return f"{cpu[key]:.2f}" if key in cpu else "-"


def _row(run: dict[str, Any]) -> str:
    statuses = run.get("statuses") or {}
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or "-"
    cpu = run["cpu_cores"]
    cells = [
        run["label"],
        run.get("cache", "-"),
        f"{run['rps']:,.0f}",
        f"{run['p50_ms']:.1f}",
        f"{run['p99_ms']:.1f}",
        _pct(run["fraction"]),
        _pct(run["target"]) if run["target"] is not None else "-",
        verdict(run["fraction"], run["target"]),
        str(run["non_2xx"] + run["errors"]),
        answers if run["label"].startswith("POST") else "",
        _cores(cpu, "server"),
        _cores(cpu, "postgres"),
        _cores(cpu, "generator"),
        _cores(cpu, "machine"),
        f"{run['db']['transactions_per_request']:.2f}" if run.get("db") else "-",
        str(run["db"]["new_sessions"]) if run.get("db") else "-",
    ]
    return "| " + " | ".join(cells) + " |"


HEAD = (
    "| endpoint | cache | req/s | p50 ms | p99 ms | of ceiling | target | | non-2xx+err "
    "| answers | server cores | pg cores | generator cores | machine busy cores "
    "| db xact/req | new db sessions |\n"
    "|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|"
)


def markdown_pass(result: dict[str, Any]) -> str:
    lines = [
        f"### {result['workers']} uvicorn worker(s)",
        "",
        f"- generator: {result['generator']}, {result['connections']} connections, "
        f"{result['duration_s']:.0f} s per run after {result['warmup_s']:.0f} s warm-up",
        f"- load average (1/5/15 min) before: {_load(result['load_before'])}, "
        f"after: {_load(result['load_after'])}",
        f"- ceiling (bare ASGI, same uvicorn set-up): {result['ceiling_rps']:,.0f} req/s "
        f"(runs: {', '.join(format(c['rps'], ',.0f') for c in result['ceiling_runs'])})",
        f"- database: {result['database']}; attendee search trigram index: "
        f"{'yes' if result['trigram_index'] else 'no (pg_trgm missing)'}; "
        f"{result['primed']} registrations per event before the reads",
        "",
        HEAD,
    ]
    lines += [_row(run) for run in result["ceiling_runs"] + result["runs"]]
    seats = result.get("seats")
    if seats:
        lines += [
            "",
            f"Seats after the write run: {seats['rows']} registrations on {seats['events']} "
            f"events, {seats['full_events']} full; oversold by counter: "
            f"{seats['oversold_counter']}, by rows: {seats['oversold_rows']}, counter != rows: "
            f"{seats['miscounted']}. 201 answers: {seats['created']}, rows added during the "
            f"measured run: {seats['rows_added']}.",
        ]
    for name, summary in result.get("profiles", {}).items():
        lines += [
            "",
            f"Profile of the server under `{name}` (py-spy, {summary['samples']} "
            "samples, self time by package, then the top functions):",
            "",
            "```",
            summary["text"],
            "```",
        ]
    return "\n".join(lines)


def _load(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def write(
    results_dir: Path, stamp: str, meta: dict[str, Any], passes: list[dict[str, Any]]
) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    document = {**meta, "passes": passes}
    (results_dir / f"{stamp}.json").write_text(json.dumps(document, indent=2) + "\n")
    text = [f"# eventms benchmark {stamp}", "", _meta(meta), ""]
    text += [markdown_pass(result) + "\n" for result in passes]
    path = results_dir / f"{stamp}.md"
    path.write_text("\n".join(text))
    return path


def _meta(meta: dict[str, Any]) -> str:
    return (
        f"Machine: {meta['cores']} cores, `{meta['uname']}`; load average at start "
        f"{_load(meta['load_start'])}, at end {_load(meta['load_end'])}. "
        "Fractions are of the ceiling measured in the same pass (before and after the "
        "endpoints, averaged). CPU columns are cores used on average during the measured "
        "run (from /proc): the server's processes, PostgreSQL's, the load generator's, "
        "and the whole machine's (anything else is other users of the machine). "
        "db xact/req: PostgreSQL transactions per request, new db sessions: connections "
        "the server opened during the run (both from pg_stat_database, to within a few %)."
    )
