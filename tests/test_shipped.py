"""The checkpoints in results/checkpoints/: complete, small, loadable, and made as registered."""

import pytest
import torch

from tdlib.checkpoint import load_model, read_record
from tdlib.model import count_parameters
from tdlib.presets import SHIPPED_MODELS, shipped_folder

MAX_BYTES = 20 * 2 ** 20


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_shipped_checkpoint_matches_its_registry_entry(name):
    env, kind, steps, bucket = SHIPPED_MODELS[name]
    folder = shipped_folder(name)
    assert (folder / "model.json").exists(), f"{name} is registered but not shipped"
    for path in folder.iterdir():
        assert path.stat().st_size < MAX_BYTES, f"{path} is over 20 MiB"
    assert not list(folder.glob("train_state*")), "optimizer state does not ship"
    record = read_record(folder)
    assert (record["env"], record["kind"]) == (env, kind)
    assert record["step"] == record["train"]["steps"] == steps
    assert record["train"].get("bucket_batches", 1) == bucket
    assert record["command"].startswith("tdlib train ")
    assert (folder / "train_log.csv").exists()
    model, loaded = load_model(folder)
    assert count_parameters(model) == record["parameters"]
    assert all(torch.isfinite(p).all() for p in model.parameters())
