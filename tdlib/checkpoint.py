"""Checkpoints: safetensors weights plus a JSON record, never pickles.

A checkpoint folder holds

* ``model.safetensors``: the network's weights;
* ``model.json``: format version, model / training / example configs, step, examples seen,
  git commit, the command that made it, library versions;
* ``train_state.safetensors`` + ``train_state.json`` (for resuming): the optimizer's tensors,
  its hyper-parameters, and the random-number state.

Each file is written to a temporary name and renamed, ``model.json`` last; every file records its
step, so a save cut short is detected on resume.  Loading checks everything and raises
:class:`CheckpointError` with what is wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from tdlib.env import list_envs, make_env
from tdlib.examples import ExampleConfig
from tdlib.layout import project_root
from tdlib.model import build_model
from tdlib.model_config import ModelConfig

FORMAT = 1
MODEL_FILE, RECORD_FILE = "model.safetensors", "model.json"
STATE_FILE, STATE_RECORD = "train_state.safetensors", "train_state.json"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the model asked for."""


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root(), text=True,
                             capture_output=True, timeout=10)
        commit = out.stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=project_root(), text=True, capture_output=True, timeout=10)
        return commit + ("-dirty" if dirty.stdout.strip() else "") if commit else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _written(path: Path, write):
    """Write ``path`` under a temporary name; returns what moves it into place."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    return lambda: os.replace(tmp, path)


def save(folder: str | Path, model: torch.nn.Module, record: dict,
         optimizer: torch.optim.Optimizer | None = None) -> Path:
    """Write a checkpoint (and, with ``optimizer``, the state to resume training)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"format": FORMAT, "torch": torch.__version__, **record}
    # Every file is written in full before any replaces the previous checkpoint's, so a save
    # that fails while writing (a full disk, an exception) leaves the previous checkpoint whole;
    # model.json moves last: it names the step, so a save cut short while moving leaves the
    # previous record, and resuming checks that every file belongs to that step.
    moves = []
    if optimizer is not None:
        tensors, meta = _optimizer_tensors(optimizer)
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        moves.append(_written(folder / STATE_FILE, lambda p: save_file(
            tensors, str(p), metadata={"step": str(record.get("step"))})))
        state_record = {"format": FORMAT, "step": record.get("step"), "optimizer": meta}
        moves.append(_written(folder / STATE_RECORD,
                              lambda p: p.write_text(json.dumps(state_record) + "\n")))
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    moves.append(_written(folder / MODEL_FILE, lambda p: save_file(
        weights, str(p), metadata={"format": str(FORMAT), "step": str(record.get("step"))})))
    moves.append(_written(folder / RECORD_FILE,
                          lambda p: p.write_text(json.dumps(record, indent=2) + "\n")))
    for move in moves:
        move()
    return folder


def read_record(folder: str | Path) -> dict:
    """The JSON record of a checkpoint."""
    path = Path(folder) / RECORD_FILE
    if not path.exists():
        raise CheckpointError(f"{folder} is not a checkpoint: {RECORD_FILE} is missing")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt: {err}") from None
    if not isinstance(record, dict):
        raise CheckpointError(f"{path} holds {type(record).__name__} {record!r:.40}, not a "
                              "checkpoint record")
    if record.get("format") != FORMAT:
        raise CheckpointError(f"{path} has format {record.get('format')!r}; this tdlib reads "
                              f"format {FORMAT}")
    return record


def trained_further_from(record: dict) -> dict:
    """The record of the checkpoint whose weights this network was trained further from (``tdlib
    train --init`` from one of the same kind and language), or ``{}``: a network started from
    another kind (a value network from a policy) or language (the sketch policy) starts anew."""
    started = record.get("initialised_from") or {}
    same = (started.get("kind"), started.get("env")) == (record.get("kind"), record.get("env"))
    return started if same else {}


def trained_before(record: dict) -> dict:
    """Steps, examples and training seconds of every network this one was trained further from
    (``initialised_from``, followed back to a start from scratch or from another kind), summed."""
    total = {"step": 0, "examples_seen": 0, "train_seconds": 0.0}
    started = trained_further_from(record)
    while started:
        for key in total:
            total[key] += started.get(key) or 0
        started = trained_further_from(started)
    return total


def _load_tensors(path: Path, device="cpu") -> dict:
    if not path.exists():
        raise CheckpointError(f"{path} is missing")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} is corrupt or not a safetensors file: {err}") from None


def load_weights(model: torch.nn.Module, folder: str | Path, new: tuple[str, ...] = ()
                 ) -> list[str]:
    """Load weights into ``model``, checking every name and shape.  Tensors of ``model`` whose
    names start with one of ``new`` may be missing and keep their initialisation (a policy that
    adds footprints to one without them); their names are returned."""
    path = Path(folder) / MODEL_FILE
    weights = _load_tensors(path)
    expected = model.state_dict()
    fresh = sorted(k for k in set(expected) - set(weights) if k.startswith(new)) if new else []
    missing = sorted(set(expected) - set(weights) - set(fresh))
    unexpected = sorted(set(weights) - set(expected))
    wrong = sorted(k for k in set(expected) & set(weights) if expected[k].shape != weights[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}")
        if wrong:
            k = wrong[0]
            parts.append(f"shape of {k} is {tuple(weights[k].shape)}, the model has "
                         f"{tuple(expected[k].shape)}")
        raise CheckpointError(f"{path} does not fit this model: " + "; ".join(parts))
    _check_values(path, weights, expected)
    model.load_state_dict(weights, strict=not fresh)
    return fresh


def _check_values(path: Path, weights: dict, expected: dict) -> None:
    """Refuse weights of another number type (the model would silently cast them) or holding
    NaN or infinity (the search would fail far from here)."""
    for name in sorted(weights):
        tensor, wanted = weights[name], expected[name]
        if tensor.dtype != wanted.dtype:
            raise CheckpointError(f"{path}: {name} is {str(tensor.dtype).replace('torch.', '')}, "
                                  f"the model's is {str(wanted.dtype).replace('torch.', '')}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: {name} holds NaN or infinite values")


def load_shared_weights(model: torch.nn.Module, folder: str | Path,
                        required: str = "encoder.") -> list[str]:
    """Load the weights of another kind of network that ``model`` shares with it: every tensor
    of the same name and shape (a value network started from a policy takes its image encoder
    and transformer blocks).  Every tensor of ``model`` under ``required`` must be among them,
    so that a network of another shape fails here and not silently later.  Returns the names
    loaded."""
    path = Path(folder) / MODEL_FILE
    weights = _load_tensors(path)
    expected = model.state_dict()
    shared = sorted(k for k in expected if k in weights and weights[k].shape == expected[k].shape)
    unmatched = sorted(k for k in expected if k.startswith(required) and k not in shared)
    if unmatched or not shared:
        raise CheckpointError(f"{path} does not fit this model: its {required.rstrip('.')} "
                              f"differs ({(unmatched or ['no shared weights'])[0]})")
    model.load_state_dict({k: weights[k] for k in shared}, strict=False)
    return shared


def load_model(folder: str | Path, device: str | torch.device = "cpu",
               kind: str | None = None, env: str | None = None) -> tuple[torch.nn.Module, dict]:
    """Build the network a checkpoint describes and load its weights (eval mode); ``kind`` and
    ``env``, when given, must be the checkpoint's."""
    record = read_record(folder)
    if env is not None and not _same_language(record.get("env"), env):
        raise CheckpointError(f"{folder} holds a {record.get('env')} model, not a {env} one")
    try:
        config = ModelConfig.from_dict(record["model"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{folder / RECORD_FILE}: bad model config: {err}") from None
    if kind is not None and config.kind != kind:
        raise CheckpointError(f"{folder} holds a {config.kind} model, not a {kind} model")
    try:
        model = build_model(config)
    except (RuntimeError, TypeError, ValueError) as err:  # e.g. an encoder timm does not know
        raise CheckpointError(f"{folder / RECORD_FILE}: cannot build its model: {err}") from None
    load_weights(model, folder)
    return model.to(device).eval(), record


def _same_language(recorded: str | None, asked: str) -> bool:
    """Whether a network of language ``recorded`` reads and writes ``asked``'s programs: the same
    grammar and image channels (CSG2D-Sketch borrows CSG2D's value network)."""
    if recorded is None or recorded == asked:
        return True
    if recorded not in list_envs():
        return False
    a, b = make_env(recorded), make_env(asked)
    return a.grammar.name == b.grammar.name and a.channels == b.channels


def example_config(record: dict) -> ExampleConfig:
    return ExampleConfig(**record["examples"])


def file_step(path: str | Path) -> int | None:
    """The step a safetensors file of a checkpoint was saved at (None if it is missing or
    records none): a save cut short leaves the weights, the state and the record unequal."""
    try:
        with safe_open(str(path), "pt") as f:
            return int((f.metadata() or {}).get("step"))
    except (OSError, SafetensorError, TypeError, ValueError):
        return None


def load_train_state(folder: str | Path, optimizer: torch.optim.Optimizer,
                     step: int | None = None) -> None:
    """Restore the optimizer and random-number state saved beside a checkpoint (of ``step``)."""
    folder = Path(folder)
    tensors = _load_tensors(folder / STATE_FILE)
    try:
        state_record = json.loads((folder / STATE_RECORD).read_text())
        meta = state_record["optimizer"]
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise CheckpointError(f"{folder / STATE_RECORD} is missing or corrupt: {err}") from None
    if step is not None and state_record.get("step") != step:
        raise CheckpointError(f"{folder}: the training state is from step "
                              f"{state_record.get('step')} and {RECORD_FILE} from step {step} (a "
                              "save was cut short); cannot resume exactly. Its weights (step "
                              f"{file_step(folder / MODEL_FILE)}) can start a new run: tdlib "
                              f"train ... --init {folder} --out ANOTHER_FOLDER")
    if "rng.torch" not in tensors:
        raise CheckpointError(f"{folder / STATE_FILE} lacks the random-number state")
    state = {"param_groups": meta["param_groups"], "state": {}}
    for key, value in tensors.items():
        if not key.startswith("opt."):
            continue
        _, index, name = key.split(".", 2)
        state["state"].setdefault(int(index), {})[name] = value
    for index, scalars in meta["scalars"].items():
        state["state"].setdefault(int(index), {}).update(
            {k: torch.tensor(v) for k, v in scalars.items()})
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"{folder}: optimizer state does not fit: {err}") from None
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])


def _optimizer_tensors(optimizer) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value) and value.dim() > 0:
                tensors[f"opt.{index}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(index), {})[name] = float(value)
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}
