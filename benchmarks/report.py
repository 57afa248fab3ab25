"""The benchmark report (``results/benchmarks.md``): the table of rates against the public code's
figures and the bars this project set, and the search speed read from the committed evaluations.

A row is ``(bench, rate)``: ``bench`` has ``name``, ``unit``, ``public`` and ``target``
(items/s, None where there is none), as ``run.Bench``.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

from tdlib.paper.runs import load_runs, method_label


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def commit() -> str:
    try:
        # "-dirty": measured on uncommitted changes (typically those committed with the report).
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(rows: list[tuple]) -> str:
    lines = ["| benchmark | tdlib | public code | ratio | bar | met |",
             "|---|---:|---:|---:|---:|:---:|"]
    for bench, rate in rows:
        public = f"{bench.public:,.0f}" if bench.public else "—"
        ratio = f"{rate / bench.public:.1f}x" if bench.public else "—"
        target = f"{bench.target:,.0f}" if bench.target else "—"
        met = ("yes" if rate >= bench.target else "**no**") if bench.target else ""
        lines.append(f"| {bench.name} ({bench.unit}) | {rate:,.0f} | {public} | {ratio} | "
                     f"{target} | {met} |")
    return "\n".join(lines)


def updated_report(old: str, rows: list[tuple], repeats: int) -> str:
    """``old`` with the table rows of the re-measured benchmarks replaced (new ones added at the
    end of the table), a line saying when and at which commit they were measured, and the
    evaluation section rebuilt."""
    fresh = {line.split(" | ")[0]: line for line in table(rows).splitlines()[2:]}
    lines = old.split("\n## Search, from the committed evaluations")[0].rstrip("\n").splitlines()
    seen, out = set(), []
    for line in lines:
        key = line.split(" | ")[0]
        if key in fresh:
            line, _ = fresh[key], seen.add(key)
        out.append(line)
    last_row = max(i for i, line in enumerate(out) if line.startswith("| "))
    out[last_row + 1:last_row + 1] = [fresh[k] for k in fresh if k not in seen]
    names = ", ".join(f"\"{b.name}\"" for b, _ in rows)
    note = (f"Re-measured {datetime.date.today().isoformat()} at commit {commit()} with "
            f"`--update` (median of {repeats}): {names}.")
    header_end = next(i for i, line in enumerate(out) if line.startswith("| benchmark"))
    out.insert(header_end - 1, note)
    return "\n".join(out + ["", evaluation_speed()])


def evaluation_speed(folder: Path | None = None) -> str:
    """Search speed read from the committed evaluations (``folder``, default ``results/eval/``):
    per configuration (method, score and variant), node expansions per second of search time and
    the median seconds to a solution, as the runs measured them (single-threaded workers, two at
    a time on the 2 cores)."""
    runs = load_runs(folder or Path(__file__).resolve().parents[1] / "results" / "eval")
    if runs.empty:
        return ""
    lines = ["## Search, from the committed evaluations",
             "",
             "Read from `results/eval/` (written by `make evaluate`: single-threaded workers, two "
             "at a time on the two cores, so one process had one core): expansions per second of "
             "search time, and the median seconds to a solution over the solved problems "
             "(goal checks and rendering included; model loading not).",
             "",
             "| test set | method | runs | problems solved | expansions/s | median s to solve |",
             "|---|---|---:|---:|---:|---:|"]
    for (testset, method, score, variant), group in runs.groupby(
            ["testset", "method", "score", "variant"]):
        solved = group[group["solved"]]
        rate = group["spent"].sum() / max(group["seconds"].sum(), 1e-9)
        median = f"{solved['seconds'].median():.2f}" if len(solved) else "—"
        label = method_label(method, score) + (f" [{variant}]" if variant else "")
        lines.append(f"| {testset} | {label} | {group['file'].nunique()} | "
                     f"{len(solved)} / {len(group)} | {rate:,.0f} | {median} |")
    return "\n".join(lines + [""])
