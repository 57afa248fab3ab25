"""Train CSG2D policies on a lent GPU machine for a fixed wall-clock budget, then measure them.

A device check, prepared to run once inside a 10-minute call:

    python tools/gpu_run.py --minutes 6 --out "$OUT"            # on the GPU machine
    python tools/gpu_run.py --minutes 0.4 --out /tmp/g --smoke   # here, a rehearsal on the CPU

Two runs share the machine, each a ``tdlib train`` process with its own DataLoader workers
(the card is fast, examples are made on its CPU cores):

- ``paper``: the paper's network (NF-ResNet-26, d 256, 8 layers, 128 px) from scratch;
- ``cpu_refined``: the cpu-preset policy of 5.06 M examples (``results/checkpoints/csg2d_policy_158k``)
  trained further on fresh examples (seed 1: its own run saw seed 0's), a drop-in for the CPU search.

A run's learning-rate schedule must end when its time does, but its speed on that machine is
unknown beforehand: phase 1 trains a quarter of the time at a flat rate (a 10M-step cosine) and
measures steps/s; phase 2 resumes it exactly (``--resume``) with ``steps`` set to what the rest
of the time allows and the cosine restarted there (``train.restart_step``), so it anneals to the
end.  Then every run is measured on the GPU as ``results/tables/one_step.csv`` measures on the
CPU (one greedy edit on 256 held-out 1-, 2- and 3-mutation problems, seed 0; the image-reliance
gap on 512 held-out examples), the CPU policy it starts from included as the control.  ``--out`` gets a
log per run, each checkpoint folder without its optimizer state (``<run>.tar.gz``; the paper
network's 85 MB of weights stay behind) and ``summary.json`` with the card, examples/s and
metrics.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import torch

from tdlib.checkpoint import example_config, load_model
from tdlib.metrics import checkpoint_metrics, image_reliance
from tdlib.presets import POLICY_STRUCTURE
from tdlib.tasks import make_task
from tdlib.trainer import pick_device

ROOT = Path(__file__).resolve().parents[1]
START_POLICY = ROOT / "results" / "checkpoints" / "csg2d_policy_158k"
LONG_SCHEDULE = 10_000_000  # phase 1's cosine length: the rate stays flat for its minutes


def run_args(smoke: bool) -> dict[str, dict]:
    """Each run's ``tdlib train`` arguments (beside --out, --steps, --max-minutes, --resume)."""
    common = ["--env", "csg2d", "--model", "policy", "--no-progress",
              "--set", "train.checkpoint_every=100000000",
              "--set", f"train.eval_problems={4 if smoke else 128}"]
    # the paper's sizes with the cpu policy's structure (presets.POLICY_STRUCTURE), as trained
    structure = [f"--set={key}={value}" for key, value in POLICY_STRUCTURE.items()]
    paper = common + structure + ["--set", "examples.masked_loss=True",
                                  "--preset", "paper", "--batch-size", "8" if smoke else "256",
                      "--lr", "5e-4", "--workers", "1" if smoke else "6",
                      "--set", "train.warmup_steps=300", "--set", "train.eval_every=1500",
                      "--set", f"train.log_every={2 if smoke else 50}"]
    refined = common + ["--preset", "cpu", "--init", str(START_POLICY), "--seed", "1",
                        "--batch-size", "16" if smoke else "256", "--lr", "5e-4",
                        "--workers", "1" if smoke else "8",
                        "--set", "train.warmup_steps=200", "--set", "train.eval_every=3000",
                        "--set", f"train.log_every={2 if smoke else 100}"]
    return {"paper": {"args": paper}, "cpu_refined": {"args": refined}}


def examples_per_second(folder: Path) -> float:
    """Median examples/s of the second half of a run's logged windows."""
    with open(folder / "train_log.csv") as f:
        rates = [float(row["examples_per_s"]) for row in csv.DictReader(f)]
    rates = sorted(rates[len(rates) // 2:]) or [0.0]
    return rates[len(rates) // 2]


def last_step(folder: Path) -> int:
    return int(json.loads((folder / "model.json").read_text())["step"])


def train_run(name: str, spec: dict, work: Path, out: Path, minutes: float, deadline: float,
              summary: dict) -> None:
    """Phase 1 (flat rate, measure speed), phase 2 (resume, anneal to the end of the time)."""
    folder = work / name
    log = open(out / f"{name}.log", "a")
    args = spec["args"]
    batch = int(args[args.index("--batch-size") + 1])
    cmd = [sys.executable, "-m", "tdlib.train", *args, "--out", str(folder)]
    record = summary.setdefault(name, {"command": " ".join(cmd[2:])})
    first = 0.25 * minutes
    try:
        t0 = time.time()
        subprocess.run(cmd + ["--steps", str(LONG_SCHEDULE), "--max-minutes", f"{first:.3f}"],
                       stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=True,
                       timeout=max(30.0, deadline - time.time()))
        step = last_step(folder)
        examples_rate = examples_per_second(folder)
        record.update(phase1_step=step, phase1_wall_s=round(time.time() - t0, 1),
                      phase1_examples_per_s=round(examples_rate, 1))
        # the rest of the budget, less phase 2's start-up and its evaluations (about 10 %)
        rest = max(0.0, (minutes - first) * 60 * 0.9)
        more = max(1, int(0.85 * examples_rate / batch * rest))  # phase 2 may run a little slower
        t1 = time.time()
        subprocess.run(cmd + ["--resume", "--steps", str(step + more),
                              "--set", f"train.restart_step={step}",
                              "--max-minutes", f"{rest / 60 * 1.1:.3f}"],
                       stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=True,
                       timeout=max(30.0, deadline - time.time()))
        record.update(phase2_planned_steps=more, phase2_wall_s=round(time.time() - t1, 1),
                      final_step=last_step(folder),
                      examples_per_s=round(examples_per_second(folder), 1))
    except (subprocess.SubprocessError, OSError, ValueError, KeyError) as err:
        record["error"] = f"{type(err).__name__}: {err}"
    finally:
        log.close()


def measure(folder: Path, n: int, device: str) -> dict:
    """One-edit solve rates (1-3 mutations) and the image-reliance gap, as the CPU tables."""
    t0 = time.time()
    result = {row["metric"]: row["value"] for row in checkpoint_metrics(folder, n, 0, device)}
    model, record = load_model(folder, device)
    task = make_task("policy", model.config.env, model.config, example_config(record), 0)
    table = image_reliance(task, model, n=2 * n)  # evaluates without gradients itself
    loss = dict(zip(table["images"], table["loss"]))
    result.update(reliance_loss_given=loss["given"], reliance_loss_blank=loss["blank"],
                  reliance_gap=loss["blank"] - loss["given"], step=record.get("step"),
                  examples_seen=record.get("examples_seen"),
                  train_seconds=record.get("train_seconds"),
                  parameters=record.get("parameters"), measure_seconds=round(time.time() - t0, 1))
    return result


def preflight(specs: dict, names: list[str], work: Path, out: Path, device: str) -> bool:
    """Two training steps and a tiny measurement of every run, in seconds, before the long runs:
    a crash on this device shows here, while the call can still be cut short and rerun."""
    ok = True
    for name in names:
        args = list(specs[name]["args"])
        args[args.index("--workers") + 1] = "0"
        cmd = [sys.executable, "-m", "tdlib.train", *args, "--out", str(work / name),
               "--steps", "2", "--set", "train.eval_problems=4"]
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        try:
            if run.returncode:
                raise RuntimeError(run.stdout[-3000:] + run.stderr[-3000:])
            metrics = measure(work / name, 4, device)
            print(f"preflight {name}: ok, {metrics}", flush=True)
        except Exception as err:
            ok = False
            print(f"preflight {name}: FAILED\n{err}", flush=True)
            (out / f"preflight_{name}.log").write_text(str(err))
    return ok


def pack(folder: Path, target: Path) -> None:
    """The checkpoint folder without its optimizer state; weights only if they come back (<16 MB)."""
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            if path.name.startswith("train_state"):
                continue
            if path.name == "model.safetensors" and path.stat().st_size > 15 * 2 ** 20:
                continue
            tar.add(path, arcname=f"{folder.name}/{path.name}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=6.0, help="training time of each run")
    parser.add_argument("--out", required=True, help="folder for logs, packed runs, summary.json")
    parser.add_argument("--work", default="/tmp/gpu_runs", help="checkpoint folders")
    parser.add_argument("--deadline", type=float, default=560,
                        help="seconds from start after which training is cut off")
    parser.add_argument("--runs", nargs="*", default=["paper", "cpu_refined"])
    parser.add_argument("--smoke", action="store_true", help="a CPU rehearsal: tiny batches, n 16")
    args = parser.parse_args(argv)
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    device = pick_device().type
    summary = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "torch": torch.__version__, "cpu_cores": os.cpu_count(), "minutes": args.minutes,
               "runs": {}}
    specs = run_args(args.smoke)
    if not preflight(specs, args.runs, work / "preflight", out, device):
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        return 3
    threads = [threading.Thread(target=train_run,
                                args=(name, specs[name], work, out, args.minutes,
                                      started + args.deadline, summary["runs"]))
               for name in args.runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summary["train_wall_s"] = round(time.time() - started, 1)
    n = 16 if args.smoke else 256
    folders = {name: work / name for name in args.runs} | {"shipped_cpu_policy": START_POLICY}
    for name, folder in folders.items():
        entry = summary["runs"].setdefault(name, {})
        try:
            entry["metrics"] = measure(folder, n, device)
        except Exception as err:  # one run's failure must not lose the others' numbers
            entry["metrics_error"] = f"{type(err).__name__}: {err}"
        if folder != START_POLICY and folder.exists():
            pack(folder, out / f"{name}.tar.gz")
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        print(name, json.dumps(entry, indent=1), flush=True)
    summary["total_wall_s"] = round(time.time() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
