"""Execute the numbered notebooks headlessly with papermill.

    python -m tdlib.notebook_runner --preset smoke --output-dir /tmp/tdlib-smoke
    python -m tdlib.notebook_runner --preset cpu --output-dir results/notebooks   # make reproduce

Each notebook has one cell tagged ``parameters`` holding at least ``preset``; the runner injects
the preset, runs the notebook from the ``notebooks/`` folder and writes the executed copy to the
output folder.  Source notebooks stay free of outputs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import papermill

from tdlib.layout import figures_dir, project_root, results_dir
from tdlib.presets import PRESETS


def notebook_paths(folder: Path | None = None) -> list[Path]:
    """The numbered notebooks (``NN_name.ipynb``) in order."""
    folder = folder or project_root() / "notebooks"
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path: Path, output_dir: Path, preset: str, **parameters) -> Path:
    """Execute one notebook with papermill; returns the executed copy's path."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    output_dir.mkdir(parents=True, exist_ok=True)
    output = output_dir / path.name
    papermill.execute_notebook(
        str(path), str(output), parameters={"preset": preset, **parameters},
        kernel_name="python3", cwd=str(path.parent), progress_bar=False,
        # The kernel's start-up warning (TCP without encryption, on localhost) is not the
        # notebook's output; kernel errors still show.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    return output


def snapshot(folders) -> dict[Path, str]:
    """Content hash of every file under ``folders`` (to report what a run changed)."""
    return {f: hashlib.sha1(f.read_bytes()).hexdigest()
            for folder in folders if Path(folder).exists()
            for f in sorted(Path(folder).rglob("*")) if f.is_file()}


def report_changes(before: dict, after: dict, root: Path) -> str:
    """One line each for the new and changed files, then a count of the unchanged ones."""
    def name(f):
        return str(f.relative_to(root)) if f.is_relative_to(root) else str(f)
    new = [name(f) for f in after if f not in before]
    changed = [name(f) for f in after if f in before and before[f] != after[f]]
    lines = [f"  new: {n}" for n in new] + [f"  changed: {n}" for n in changed]
    unchanged = len(after) - len(new) - len(changed)
    return "\n".join(lines + [f"{len(new)} new, {len(changed)} changed, {unchanged} unchanged "
                               "figure and table files"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tdlib.notebook_runner",
                                     description="Execute the numbered notebooks with papermill.")
    parser.add_argument("--preset", choices=PRESETS, default="cpu",
                        help="smoke: seconds, for tests; cpu: the shipped results; paper: GPU sizes")
    parser.add_argument("--output-dir", type=Path, default=project_root() / "results" / "notebooks",
                        help="where the executed copies go (default: results/notebooks)")
    parser.add_argument("--only", nargs="*", default=None,
                        help="run only notebooks whose name starts with one of these prefixes")
    args = parser.parse_args(argv)
    paths = notebook_paths()
    if args.only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in args.only)]
    if not paths:
        print("no notebooks to run", file=sys.stderr)
        return 1
    os.environ.setdefault("MPLBACKEND", "Agg")
    if args.preset != "cpu":
        # Only the cpu preset regenerates the shipped figures and tables; the others write
        # beside their executed notebooks so that they never overwrite them.
        os.environ.setdefault("TDLIB_FIGURES", str(args.output_dir / "figures"))
        os.environ.setdefault("TDLIB_RESULTS", str(args.output_dir / "results"))
    watched = [figures_dir(), results_dir() / "tables"]
    before = snapshot(watched)
    for path in paths:
        start = time.perf_counter()
        print(f"running {path.name} (preset {args.preset}) ...", flush=True)
        out = run_notebook(path, args.output_dir, args.preset)
        print(f"  done in {time.perf_counter() - start:.0f} s -> {out}", flush=True)
    print(report_changes(before, snapshot(watched), project_root()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
