"""The training loop of every network: :class:`Trainer` (``tdlib train`` is :mod:`tdlib.train`).

The trainer has no model-specific code: a :mod:`tdlib.tasks` task makes the examples (in
DataLoader worker processes, ``bucket_batches`` batches at a time, sorted by length so that
little compute goes to padding), the batches and the loss.  Every ``checkpoint_every`` steps, at
the end, and on Ctrl-C it writes a checkpoint (:mod:`tdlib.checkpoint`) with the optimizer and
RNG state; ``--resume`` continues from it exactly: example ``i`` of a run depends only on the
seed and ``i``, so the resumed run sees the same batches as an uninterrupted one.

Logs: ``train_log.csv`` (step, loss, accuracies, examples/s, lr) and ``eval_log.csv`` (held-out
metrics from :mod:`tdlib.metrics`).  The device is picked automatically (CUDA with bf16 autocast
when present); several processes run under ``torchrun`` with DDP (nccl on GPU, gloo on CPU),
each rank taking every ``world``-th example.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from tdlib import checkpoint
from tdlib.examples import ExampleConfig
from tdlib.metrics import held_out_metrics
from tdlib.model import build_model, count_parameters
from tdlib.model_config import ModelConfig
from tdlib.presets import TrainConfig
from tdlib.tasks import Task


class BatchChunks(Dataset):
    """Chunk ``c`` of a run: ``bucket`` collated batches made from consecutive examples.

    Rank ``r`` of ``world`` takes examples ``(c * bucket * batch + j) * world + r``.  Within a
    chunk the examples are sorted by length before they are cut into batches (so a batch pads
    to a length close to its own examples', not to the longest of 32 random ones), and the
    batches are then put in a seeded random order.  A chunk is a pure function of the seed and
    ``c``, which keeps resumes exact; ``bucket=1`` is plain consecutive batches.
    """

    def __init__(self, task: Task, batch_size: int, bucket: int = 1, rank: int = 0,
                 world: int = 1):
        self.task, self.batch_size, self.bucket = task, batch_size, bucket
        self.rank, self.world = rank, world

    def __len__(self):
        return 2 ** 62

    def __getitem__(self, chunk):
        size = self.bucket * self.batch_size
        first = chunk * size
        items = [self.task.example((first + j) * self.world + self.rank) for j in range(size)]
        if self.bucket > 1:
            items.sort(key=lambda it: len(it.get("tokens", ())))
        batches = [self.task.collate(items[i:i + self.batch_size])
                   for i in range(0, size, self.batch_size)]
        if self.bucket > 1:
            order = np.random.default_rng([self.task.seed, chunk, 0x6275]).permutation(self.bucket)
            batches = [batches[i] for i in order]
        return batches


def _init_worker(_):
    torch.set_num_threads(1)
    # Ctrl-C and `kill` of the process group (a scheduler's SIGTERM) reach the workers too; the
    # main process alone decides: it finishes its step, saves and shuts the workers down.  A
    # worker killed by the signal would make the main process fail in the middle of its save.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def pick_device(name: str | None = None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Trainer:
    """Trains ``task``'s network into ``out``; see the module docstring."""

    def __init__(self, task: Task, train_config: TrainConfig, out: str | Path,
                 resume: bool = False, device: str | None = None, command: str = "",
                 progress: bool = True):
        self.task, self.config, self.out = task, train_config, Path(out)
        self.command = command
        self.progress = progress
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            if torch.cuda.is_available():
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if device is None and torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        self.device = pick_device(device)
        torch.manual_seed(train_config.seed)
        self.model = build_model(task.model_config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=train_config.lr,
                                          weight_decay=train_config.weight_decay)
        self.step = 0
        self.seconds = 0.0  # training wall time so far, over every resumed piece
        # (step, commit, command) of every piece of the run so far, this one last: a run resumed
        # with a new schedule (a warm restart, an anneal) keeps the whole recipe in its record
        self.history: list[dict] = []
        self.started_at = 0
        # what the weights of a --init run started from (its step, examples and minutes), so that
        # a network trained further from a shipped one still says everything it has seen
        self.initialised_from: dict | None = None
        if resume:
            self._resume()
        else:
            # a first run that died before its first checkpoint left logs of nothing that was
            # kept: this run's logs start anew (the CLI refuses a folder holding a checkpoint)
            if self.rank == 0:
                truncate_logs(self.out, 0)
            if train_config.init_from:
                self._initialise(Path(train_config.init_from))
        self.wrapped = self.model
        if self.world > 1:
            self.wrapped = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    # ---------------------------------------------------------------- state
    def _record(self) -> dict:
        return {"kind": self.task.kind, "env": self.task.env_name,
                "model": self.task.model_config.to_dict(), "train": self.config.to_dict(),
                "examples": asdict(self.task.example_config), "step": self.step,
                "world_size": self.world,
                "examples_seen": self.step * self.config.batch_size * self.world,
                "train_seconds": round(self.seconds, 1),
                "parameters": count_parameters(self.model), "git_commit": checkpoint.git_commit(),
                "command": self.command,
                "history": self.history + [{"from_step": self.started_at,
                                            "git_commit": checkpoint.git_commit(),
                                            "command": self.command,
                                            "train": self.config.to_dict()}],
                **({"initialised_from": self.initialised_from} if self.initialised_from else {})}

    def _initialise(self, folder: Path):
        record = checkpoint.read_record(folder)
        if record.get("kind") == self.task.kind:
            # names and shapes checked there; a capability the start lacks starts fresh
            fresh = checkpoint.load_weights(self.model, folder, new=("footprint_",))
            what = "the weights" + (f" (new: {', '.join(fresh)})" if fresh else "")
        else:  # e.g. a value network that starts from what a policy has learnt of images
            shared = checkpoint.load_shared_weights(self.model, folder)
            what = f"the {len(shared)} {record.get('kind')} tensors shared with this {self.task.kind}"
        self.initialised_from = {"folder": str(folder), "what": what,
                                 **{key: record.get(key) for key in (
                                     "kind", "env", "step", "examples_seen", "train_seconds",
                                     "git_commit", "command", "history", "initialised_from")}}
        if self.rank == 0:
            print(f"starting from {what} of {folder} (step {record.get('step')})")

    def _resume(self):
        record = checkpoint.read_record(self.out)
        mine = {"model": self.task.model_config.to_dict(),
                "examples": asdict(self.task.example_config),
                "seed": self.config.seed, "batch_size": self.config.batch_size,
                "bucket_batches": self.config.bucket_batches, "world_size": self.world}
        try:  # fields the record lacks take their defaults
            their_model = ModelConfig.from_dict(record.get("model") or {}).to_dict()
        except (TypeError, ValueError):
            their_model = record.get("model")
        their_examples = record.get("examples")
        if isinstance(their_examples, dict):
            their_examples = {**asdict(ExampleConfig()), **their_examples}
        theirs = {"model": their_model, "examples": their_examples,
                  "seed": record.get("train", {}).get("seed"),
                  "batch_size": record.get("train", {}).get("batch_size"),
                  "bucket_batches": record.get("train", {}).get("bucket_batches", 1),
                  "world_size": record.get("world_size", 1)}
        different = [k for k in mine if mine[k] != theirs[k]]
        if different:
            raise checkpoint.CheckpointError(
                f"{self.out} was trained with a different {', '.join(different)}; an exact resume "
                "needs the same preset and options (or choose another --out)")
        self.step = int(record["step"])
        self.seconds = float(record.get("train_seconds", 0.0))
        saved = checkpoint.file_step(self.out / checkpoint.MODEL_FILE)
        if saved is not None and saved > self.step \
                and saved == checkpoint.file_step(self.out / checkpoint.STATE_FILE):
            # the last save wrote its weights and state and was cut before model.json: both
            # are whole, so the run goes on from them (the minutes since the record's step are
            # not counted)
            if self.rank == 0:
                print(f"{self.out}: the save of step {saved} was cut short before "
                      f"{checkpoint.RECORD_FILE} (step {self.step}); resuming from step {saved}",
                      file=sys.stderr)
            self.step = saved
        self.history = list(record.get("history") or [
            {"from_step": 0, "git_commit": record.get("git_commit"),
             "command": record.get("command"), "train": record.get("train")}])
        self.started_at = self.step
        self.initialised_from = record.get("initialised_from")
        if self.history and self.history[-1]["command"] == self.command \
                and self.history[-1]["train"] == self.config.to_dict():
            self.started_at = self.history.pop()["from_step"]  # the same piece, continued
        checkpoint.load_weights(self.model, self.out)
        checkpoint.load_train_state(self.out, self.optimizer, self.step)
        if self.rank == 0:
            truncate_logs(self.out, self.step)

    def save(self):
        if self.rank == 0:
            checkpoint.save(self.out, self.model, self._record(), self.optimizer)

    def lr_at(self, step: int) -> float:
        cfg = self.config
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        start = max(cfg.warmup_steps, cfg.restart_step)
        progress = min(1.0, max(0, step - start) / max(1, cfg.steps - start))
        return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    # ----------------------------------------------------------------- loop
    def loader(self) -> DataLoader:
        """Chunks of ``bucket_batches`` batches from the current step's chunk on."""
        cfg = self.config
        options = {}
        if cfg.workers > 0:
            options = dict(num_workers=cfg.workers, worker_init_fn=_init_worker,
                           persistent_workers=True, prefetch_factor=max(1, 8 // cfg.bucket_batches))
        chunks = BatchChunks(self.task, cfg.batch_size, cfg.bucket_batches, self.rank, self.world)
        # The sampler: chunk numbers from the current one on, without end.
        return DataLoader(chunks, batch_size=None,
                          sampler=itertools.count(self.step // cfg.bucket_batches), **options)

    def batches(self):
        """The batches from the current step on (a resume mid-chunk skips the chunk's first ones)."""
        skip = self.step % self.config.bucket_batches
        for chunk in self.loader():
            yield from chunk[skip:]
            skip = 0

    def _out_of_time(self, max_seconds: float | None, seconds: float) -> bool:
        """Whether this call's time is up; rank 0's clock decides for every rank (ranks that
        stopped on their own clocks would leave the others waiting in an all-reduce)."""
        if max_seconds is None:
            return False
        if self.world == 1:
            return seconds >= max_seconds
        flag = torch.tensor([float(seconds >= max_seconds)],
                            device=self.device if self.device.type == "cuda" else "cpu")
        dist.broadcast(flag, 0)
        return bool(flag.item())

    def fit(self, steps: int | None = None, max_seconds: float | None = None) -> Path:
        """Train up to ``steps`` (default: the config's), or until this call has trained for
        ``max_seconds`` (then it checkpoints, evaluates and returns; ``--resume`` goes on with
        the same schedule); returns the checkpoint folder."""
        cfg = self.config
        last = cfg.steps if steps is None else min(cfg.steps, steps)
        self.out.mkdir(parents=True, exist_ok=True)
        if self.step >= last:
            return self.out
        train_log = _CsvLog(self.out / "train_log.csv", self.rank == 0)
        eval_log = _CsvLog(self.out / "eval_log.csv", self.rank == 0)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        bar = tqdm(total=last, initial=self.step, disable=not self.progress or self.rank != 0,
                   desc=f"{self.task.kind} {self.task.env_name}", dynamic_ncols=True)
        self.model.train()
        began, seconds_before = time.perf_counter(), self.seconds
        window_start, window_examples = time.perf_counter(), 0
        interrupted = []
        previous = {}
        if threading.current_thread() is threading.main_thread():
            # Ctrl-C (or a SIGTERM from a scheduler or `kill`) finishes the current step, then
            # saves: never a half-applied update, nothing lost since the last checkpoint.
            for number in (signal.SIGINT, signal.SIGTERM):
                previous[number] = signal.signal(number, lambda *_: interrupted.append(True))
        try:
            for batch in self.batches():
                if interrupted:
                    self.save()
                    raise KeyboardInterrupt
                if self.step >= last:
                    break
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr_at(self.step)
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                with autocast:
                    loss, metrics = self.task.loss(self.wrapped, batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.step += 1
                self.seconds = seconds_before + time.perf_counter() - began
                out_of_time = self._out_of_time(max_seconds, self.seconds - seconds_before)
                window_examples += cfg.batch_size * self.world
                bar.update(1)
                final = self.step == last or out_of_time
                if self.step % cfg.log_every == 0 or final:
                    elapsed = time.perf_counter() - window_start
                    row = {"step": self.step, "loss": loss.item(), **metrics,
                           "examples_per_s": window_examples / max(elapsed, 1e-9),
                           "lr": self.lr_at(self.step - 1)}
                    train_log.write(row)
                    bar.set_postfix(loss=f"{row['loss']:.3f}", ex_s=f"{row['examples_per_s']:.0f}")
                    window_start, window_examples = time.perf_counter(), 0
                if self.step % cfg.checkpoint_every == 0 or final:
                    self.save()
                if self.rank == 0 and (self.step % cfg.eval_every == 0 or final):
                    paused = time.perf_counter()
                    eval_log.write({"step": self.step,
                                    "examples_seen": self.step * cfg.batch_size * self.world,
                                    "train_minutes": round(self.seconds / 60, 2), **held_out_metrics(
                                        self.task, self.model, cfg.eval_problems, cfg.eval_seed)})
                    began += time.perf_counter() - paused  # evaluation is not training time
                    window_start, window_examples = time.perf_counter(), 0
                if out_of_time:
                    break
        finally:
            bar.close()
            for number, handler in previous.items():
                signal.signal(number, handler)
        if interrupted:
            self.save()
            raise KeyboardInterrupt
        if self.world > 1:
            dist.barrier()
        return self.out


class _CsvLog:
    """Appends rows to a CSV file; the header is the first row's keys (resumes append)."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled
        self.fields = None
        if enabled and path.exists() and path.stat().st_size:
            with open(path) as f:
                self.fields = next(csv.reader(f), None)

    def write(self, row: dict):
        if not self.enabled:
            return
        new = self.fields is None
        if new:
            self.fields = list(row)
        with open(self.path, "a", newline="") as f:
            # "\n" like the rows truncate_logs keeps: a resumed run must not rewrite the kept rows
            writer = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore",
                                    lineterminator="\n")
            if new:
                writer.writeheader()
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def truncate_logs(folder: Path, step: int) -> None:
    """Drop log rows after ``step`` (a resumed run rewrites them), and rows that do not start
    with a step (a line torn by a dying run); at step 0 the logs go altogether."""
    for name in ("train_log.csv", "eval_log.csv"):
        path = folder / name
        if not path.exists():
            continue
        if step == 0:
            path.unlink(missing_ok=True)
            continue
        lines = path.read_text(errors="replace").splitlines(keepends=True)
        if not lines:
            continue
        kept = [lines[0]] + [ln for ln in lines[1:] if ln.endswith("\n") and _step_of(ln) <= step]
        path.write_text("".join(kept))


def _step_of(line: str) -> float:
    """The step a log row starts with; infinity (dropped) for a row that has none."""
    head = line.split(",", 1)[0]
    return int(head) if head.isdigit() else float("inf")
