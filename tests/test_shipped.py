"""The checkpoints in results/checkpoints/: complete, small, loadable, and made as registered."""

import json

import pytest
import torch

from tdlib.checkpoint import load_model, read_record
from tdlib.model import count_parameters
from tdlib.presets import SHIPPED_MODELS, shipped_folder

MAX_BYTES = 20 * 2 ** 20
# shipped checkpoints started with --init before the trainer recorded the source's record
_INIT_BEFORE_PROVENANCE = {"csg2d-sketch_policy_14k", "csg2d_value_61k"}


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_shipped_checkpoint_matches_its_registry_entry(name):
    entry = SHIPPED_MODELS[name]
    env, kind, steps, bucket = entry.env, entry.kind, entry.steps, entry.bucket_batches
    folder = shipped_folder(name)
    assert (folder / "model.json").exists(), f"{name} is registered but not shipped"
    for path in folder.iterdir():
        assert path.stat().st_size < MAX_BYTES, f"{path} is over 20 MiB"
    assert not list(folder.glob("train_state*")), "optimizer state does not ship"
    record = read_record(folder)
    assert (record["env"], record["kind"]) == (env, kind)
    assert record["train"]["steps"] == steps  # the schedule's length
    assert record["step"] == (entry.stop_at or steps)  # a time-limited run stopped before it
    assert record["train"].get("bucket_batches", 1) == bucket
    # made by tdlib train, or (the CSG2D policy, trained in pieces) by the recipe tool
    assert record["command"].startswith(("tdlib train ", "python tools/policy_ab.py "))
    assert (folder / "train_log.csv").exists()
    model, loaded = load_model(folder)
    assert count_parameters(model) == record["parameters"]
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_the_registered_command_makes_the_shipped_network(name):
    """shipped_command rebuilds the configs the checkpoint was trained with: the same network,
    the same examples (fields added since take their defaults)."""
    from dataclasses import asdict
    from tdlib.examples import ExampleConfig
    from tdlib.model_config import ModelConfig
    from tdlib.presets import shipped_command
    from tdlib.train import build_parser, configs_from_args
    model, train, examples = configs_from_args(build_parser().parse_args(shipped_command(name)))
    record = read_record(shipped_folder(name))
    assert model == ModelConfig.from_dict(record["model"])
    assert train.seed == record["train"]["seed"]
    assert asdict(examples) == {**asdict(ExampleConfig()), **record["examples"]}


@pytest.mark.parametrize("name", [n for n, e in SHIPPED_MODELS.items() if e.init])
def test_a_fine_tuned_checkpoint_starts_from_a_shipped_one_made_before_it(name):
    """Retraining in registry order (notebook 05's retrain) makes the source before the run that
    starts from it, and the checkpoint records that source."""
    entry = SHIPPED_MODELS[name]
    order = list(SHIPPED_MODELS)
    assert entry.init in SHIPPED_MODELS and order.index(entry.init) < order.index(name)
    record = read_record(shipped_folder(name))
    init_from = record["train"]["init_from"]
    assert init_from and shipped_folder(entry.init).resolve() == (
        shipped_folder(entry.init).parents[2] / init_from).resolve()
    if name in _INIT_BEFORE_PROVENANCE:  # trained before records kept their source's
        assert "initialised_from" not in record
        return
    source = read_record(shipped_folder(entry.init))
    started = record["initialised_from"]
    assert shipped_folder(entry.init).resolve() == (
        shipped_folder(entry.init).parents[2] / started["folder"]).resolve()
    assert {k: started[k] for k in ("kind", "env", "step", "examples_seen", "train_seconds",
                                    "history")} == {
        k: source[k] for k in ("kind", "env", "step", "examples_seen", "train_seconds", "history")}


def test_every_committed_evaluation_read_the_checkpoints_that_ship():
    """A retrained checkpoint ships together with the reruns of every evaluation that reads it
    (README): the network versions each run in results/eval/ records are those of the checkpoints
    in results/checkpoints/ (the shipped one of its language, or the arm its settings name)."""
    from tdlib import testsets
    from tdlib.evaluation import file_sha256
    from tdlib.methods import default_model_folder
    from tdlib.layout import project_root
    root = project_root()
    runs = sorted((root / "results" / "eval").glob("*.csv.json"))
    assert runs, "no committed evaluations"
    env_of = {}
    mismatches = []
    for settings in runs:
        run = json.loads(settings.read_text())
        name = run["testset"]
        if name not in env_of:
            env_of[name] = testsets.load(root / "results" / "testsets" / name)[0]["spec"]["env"]
        named = run.get("checkpoints", {})
        # runs written before the settings recorded versions (AR and REPL runs) carry none
        for kind, version in run.get("models", {}).items():
            folder = (root / named[kind] if kind in named
                      else default_model_folder(env_of[name], kind))
            record = read_record(folder)
            shipped = {"step": record["step"], "examples_seen": record["examples_seen"]}
            if "weights_sha256" in version:  # recorded since the settings hash the weights
                shipped["weights_sha256"] = file_sha256(folder / "model.safetensors")
            if version != shipped:
                mismatches.append(f"{settings.name}: {kind} {version} is not {folder.name}'s "
                                  f"step {record['step']} (or not its weights)")
    assert not mismatches, "\n".join(mismatches)


def test_a_run_cut_short_is_remade_with_stop_at(monkeypatch):
    """A registry entry with ``stop_at`` (a run a time limit cut short) is remade by a command
    that keeps the whole schedule and stops at that step."""
    from tdlib import presets
    from tdlib.train import build_parser
    monkeypatch.setitem(presets.SHIPPED_MODELS, "cut_short",
                        presets.ShippedModel("csg2d", "policy", 18_000, stop_at=11_985))
    args = build_parser().parse_args(presets.shipped_command("cut_short"))
    assert (args.steps, args.stop_at) == (18_000, 11_985)
    monkeypatch.setitem(presets.SHIPPED_MODELS, "whole",
                        presets.ShippedModel("csg2d", "policy", 18_000))
    assert build_parser().parse_args(presets.shipped_command("whole")).stop_at is None
