"""A checkpoint that does not fit is refused in one line naming the file, never half-loaded."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from tdlib.checkpoint import CheckpointError, load_model
from tdlib.methods import default_model_folder
from tdlib.layout import project_root

SHIPPED = project_root() / "results" / "checkpoints"


@pytest.fixture
def copy(tmp_path):
    def make(name="csg2d_value"):
        folder = tmp_path / name
        shutil.copytree(SHIPPED / name, folder)
        return folder
    return make


def rewrite_weights(folder, change):
    weights = load_file(str(folder / "model.safetensors"))
    name = sorted(weights)[0]
    weights[name] = change(weights[name])
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "1"})
    return name


@pytest.mark.parametrize("text, message", [
    ("[]", "holds list"), ("null", "holds NoneType"), ("", "is corrupt"),
    (b"\xff\xfe{", "is corrupt"),
])
def test_a_record_that_is_not_a_record_is_refused_naming_the_file(copy, text, message):
    folder = copy()
    path = folder / "model.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CheckpointError, match=message) as err:
        load_model(folder)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_weights_of_another_type_or_not_finite_are_refused(copy):
    folder = copy()
    name = rewrite_weights(folder, lambda t: t.to(torch.int32))
    with pytest.raises(CheckpointError, match=f"{name} is int32, the model's is float32"):
        load_model(folder)
    folder = copy("csg2d_ar")
    name = rewrite_weights(folder, lambda t: torch.full_like(t, float("nan")))
    with pytest.raises(CheckpointError, match=f"{name} holds NaN"):
        load_model(folder)


def test_an_unknown_encoder_or_a_bad_config_value_is_refused_naming_the_file(copy):
    folder = copy()
    record = json.loads((folder / "model.json").read_text())
    record["model"]["encoder"] = "resnet9000"
    (folder / "model.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="cannot build its model") as err:
        load_model(folder)
    assert str(folder / "model.json") in str(err.value)
    record["model"]["encoder"], record["model"]["d_model"] = "nf_micro", "abc"
    (folder / "model.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match=str(folder)):
        load_model(folder)


@pytest.mark.parametrize("network, language", [("tinysvg_policy", "csg2d"),
                                               ("rainbow_ar", "csg2d"),
                                               ("csg2d_policy", "tinysvg")])
def test_another_languages_network_is_refused(network, language):
    with pytest.raises(CheckpointError, match=f"not a {language} one"):
        load_model(SHIPPED / network, env=language)


def test_the_sketch_language_borrows_csg2ds_value_network():
    folder = default_model_folder("csg2d-sketch", "value")
    model, record = load_model(folder, kind="value", env="csg2d-sketch")
    assert record["env"] == "csg2d"


def test_trained_before_sums_every_piece_of_the_same_kind_and_language():
    from tdlib.checkpoint import trained_before
    first = {"kind": "policy", "env": "csg2d", "step": 100, "examples_seen": 3200,
             "train_seconds": 60.0}
    second = {"kind": "policy", "env": "csg2d", "step": 50, "examples_seen": 1600,
              "train_seconds": 30.0, "initialised_from": first}
    third = {"kind": "policy", "env": "csg2d", "step": 7, "initialised_from": second}
    assert trained_before(third) == {"step": 150, "examples_seen": 4800, "train_seconds": 90.0}
    value = {"kind": "value", "env": "csg2d", "step": 9, "initialised_from": second}
    assert trained_before(value) == {"step": 0, "examples_seen": 0, "train_seconds": 0.0}
    shipped = json.loads((SHIPPED / "csg2d_policy_210k" / "model.json").read_text())
    assert trained_before(shipped)["step"] + shipped["step"] == 210_000
