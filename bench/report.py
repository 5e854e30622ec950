"""Turn measured runs into fractions of the ceiling, a markdown table and a JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import workloads


def fraction(rps: float, ceiling: float) -> float:
    return rps / ceiling if ceiling else 0.0


def verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return "met" if value >= target else "MISSED"


def goal(run: dict[str, Any], ceiling_w1: float, workers: int) -> dict[str, Any] | None:
    """The issue's goal for this run: `goal_factor` times the original, whose figure is
    its fraction of the one-worker ceiling; lists in bytes per second."""
    key = run.get("key")
    if key not in workloads.ORIGINAL or run.get("other"):
        return None
    original = workloads.ORIGINAL[key] * ceiling_w1
    factor = workloads.goal_factor(workers)
    if key in workloads.BY_BYTES:
        value = run["rps"] * run.get("bytes_per_response", 0.0)
        original *= workloads.ORIGINAL_LIST_BYTES
        unit = "B/s"
    else:
        value, unit = run["rps"], "req/s"
    return {
        "unit": unit,
        "value": value,
        "original_est": original,
        "factor": factor,
        "target": factor * original,
        "times_original": value / original if original else 0.0,
        "verdict": verdict(value, factor * original),
    }


def missed(run: dict[str, Any], ceiling_w1: float, workers: int) -> bool:
    judged = goal(run, ceiling_w1, workers)
    return bool(judged and judged["verdict"] == "MISSED")


def judge(
    run: dict[str, Any], ceiling_w1: float, workers: int, compared: list[dict[str, Any]]
) -> None:
    """Attach the goal and, when a compare server ran, the ratios to its same workload."""
    run["goal"] = goal(run, ceiling_w1, workers)
    other = next((c for c in compared if c.get("key") == run.get("key")), None)
    if other is None or run.get("other"):
        return
    mine, theirs = run["cpu_ms_per_request"], other["cpu_ms_per_request"]
    run["vs_compare"] = {
        "rps_ratio": run["rps"] / other["rps"] if other["rps"] else None,
        "bytes_per_s_ratio": (
            (run["rps"] * run["bytes_per_response"]) / (other["rps"] * other["bytes_per_response"])
            if other["rps"] and other["bytes_per_response"]
            else None
        ),
        "p99_ms": other["p99_ms"],
        "p99_below": run["p99_ms"] < other["p99_ms"],
        "cpu_ms_per_request": theirs.get("server"),
        # > 1: eventms spends less server CPU per request than the other server
        "cpu_ratio": (
            theirs["server"] / mine["server"]
            if mine.get("server") and theirs.get("server")
            else None
        ),
    }


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
    ms = run.get("cpu_ms_per_request") or {}
    line += "  CPU ms/req: " + " ".join(f"{k} {v:.3f}" for k, v in ms.items())
    line += f"  {run.get('bytes_per_response', 0):,.0f} B/answer"
    return line


def _cores(cpu: dict[str, float], key: str) -> str:
    return f"{cpu[key]:.2f}" if key in cpu else "-"


def _ms(run: dict[str, Any], key: str) -> str:
    value = (run.get("cpu_ms_per_request") or {}).get(key)
    return f"{value:.3f}" if value is not None else "-"


def _x(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


def _row(run: dict[str, Any]) -> str:
    statuses = run.get("statuses") or {}
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or "-"
    cpu = run["cpu_cores"]
    judged = run.get("goal")
    vs = run.get("vs_compare")
    if judged:
        goal_cells = [
            f"{judged['times_original']:.2f}x (of {judged['original_est']:,.0f} {judged['unit']})",
            f"{judged['factor']:g}x",
            judged["verdict"],
        ]
    else:
        goal_cells = ["-", "-", ""]
    if vs:
        ratio = vs["bytes_per_s_ratio"] if run.get("key") in workloads.BY_BYTES else vs["rps_ratio"]
        compare_cells = [
            _x(ratio),
            f"{vs['p99_ms']:.1f}{'' if vs['p99_below'] else ' (p99 not below)'}",
            _x(vs["cpu_ratio"]),
        ]
    else:
        compare_cells = ["-", "-", "-"]
    cells = [
        run["label"],
        run.get("cache", "-"),
        f"{run['rps']:,.0f}",
        f"{run['p50_ms']:.1f}",
        f"{run['p99_ms']:.1f}",
        f"{run.get('bytes_per_response', 0):,.0f}",
        _ms(run, "server"),
        _ms(run, "postgres"),
        _ms(run, "redis"),
        _pct(run.get("fraction", 0.0)),
        *goal_cells,
        *compare_cells,
        str(run["non_2xx"] + run["errors"]),
        answers if run["label"].split(": ")[-1].startswith("POST") else "",
        _cores(cpu, "server"),
        _cores(cpu, "postgres"),
        _cores(cpu, "redis"),
        _cores(cpu, "generator"),
        _cores(cpu, "machine"),
        f"{run['db']['transactions_per_request']:.2f}" if run.get("db") else "-",
    ]
    return "| " + " | ".join(cells) + " |"


HEAD = (
    "| endpoint | cache | req/s | p50 ms | p99 ms | bytes/answer | server CPU ms/req "
    "| pg CPU ms/req | redis CPU ms/req | of ceiling | x original (est. from ceiling) "
    "| goal | | x compare | compare p99 ms | compare CPU/req ÷ ours | non-2xx+err | answers "
    "| server cores | pg cores | redis cores | generator cores | machine busy cores "
    "| db xact/req |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---"
    "|---:|---:|---:|---:|---:|---:|"
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
        f"- the original estimated from the one-worker ceiling "
        f"({result.get('ceiling_w1_rps', 0):,.0f} req/s) and issue 10's fractions; goal: "
        f"{result.get('goal_factor', 0):g}x it (lists in bytes/s, at its 24 KB answers)",
        f"- database: {result['database']}; attendee search trigram index: "
        f"{'yes' if result['trigram_index'] else 'no (pg_trgm missing)'}; "
        f"{result['primed']} registrations per event before the reads",
        "",
        HEAD,
    ]
    lines += [_row(run) for run in result["ceiling_runs"] + result.get("ceiling_w1_runs", [])]
    lines += [_row(run) for run in result["runs"]]
    other = result.get("compare")
    if other:
        lines += [_row(run) for run in other["runs"]]
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
