"""Presets: the paper's sizes (GPU), what ships (2-core CPU, about an hour per model), and smoke.

``preset(name, kind, env)`` returns the three configs a training run needs.  Every field can be
overridden afterwards with :func:`dataclasses.replace`; the trainer stores all three in every
checkpoint, so a checkpoint always says exactly how it was made.
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass, fields, replace

from tdlib.env import make_env
from tdlib.examples import ExampleConfig
from tdlib.layout import project_root
from tdlib.model_config import KINDS, ModelConfig
from tdlib.tokens import Tokenizer

PRESETS = ("smoke", "cpu", "paper")
# The paper's ablations (Figure 5): no_current_image blanks the current image, no_reverse_path
# trains on the edit that undoes the last noising step (ExampleConfig.mode "last_step"),
# no_noising starts every example from an unrelated program (rho = 1).
ABLATIONS = ("no_current_image", "no_reverse_path", "no_noising")


@dataclass
class TrainConfig:
    """How a network is trained; stored in every checkpoint."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # cosine decay to this fraction of lr
    # The cosine starts here instead of after the warm-up: a resumed run given a new lr, steps
    # and restart_step = its current step anneals from lr to min_lr_ratio * lr over the rest.
    restart_step: int = 0
    warmup_steps: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    workers: int = 1  # DataLoader worker processes making examples
    bucket_batches: int = 1  # batches made at once and sorted by length (less padding)
    log_every: int = 50
    eval_every: int = 1000
    eval_problems: int = 64
    # Held-out problems come from this seed, not the run's: runs of different seeds are then
    # evaluated on the same problems.
    eval_seed: int = 0
    checkpoint_every: int = 500
    seed: int = 0
    # a checkpoint folder whose weights start the run (fine-tuning: the CSG2D-Sketch policy starts
    # from the CSG2D policy); every name and shape must fit; "" starts from random weights
    init_from: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


_MODEL = {
    "smoke": dict(image_size=32, encoder="nf_tiny", d_model=32, n_layers=1, n_heads=2,
                  max_positions=192, context=256, max_edit_tokens=48),
    "cpu": dict(image_size=64, encoder="nf_tiny", coord_planes=True, d_model=96, n_layers=3,
                n_heads=4,
                max_positions=192, context=256, max_edit_tokens=48),
    "paper": dict(image_size=128, encoder="nf_resnet26", d_model=256, n_layers=8, n_heads=16,
                  max_positions=448, context=512, max_edit_tokens=64),
}
# Improvements beyond the paper, chosen for the cpu preset's policy at equal CPU time
# (results/tables/recipe_runs.csv): 16 spatial image tokens under a LayerNorm, prefix-LM attention
# over the image prefix and the context, a content pointer for <POS k>, and (in ExampleConfig) the
# loss over what the grammar allows.  The paper preset keeps the paper's architecture: none of
# them (tools/gpu_run.py turns them on at the paper's sizes with --set).
POLICY_STRUCTURE = dict(prefix_tokens=16, prefix_norm=True, bidirectional_prompt=True,
                        pointer_positions=True)
# Footprints (each program part's drawn and visible pixels pooled into its tokens) where the
# language's renderer gives them.  Measured on CSG2D: one greedy edit solved 34.0 % of 1,024
# held-out one-mutation problems against 29.4 % for the same 25 minutes without
# (results/tables/recipe_one_step.csv); TinySVG's and Rainbow's layout footprints are on by the
# same rule, not yet by a measurement of their own.
_POLICY = {"cpu": dict(encoder="nf_micro", d_model=64, encoder_stride=16, **POLICY_STRUCTURE)}
# The cpu preset's value recipe, chosen at equal CPU time (results/tables/value_recipe_runs.csv): the
# policy's network shape (so that a value run can start from the policy's encoder and blocks,
# ``tdlib train --init``), 16 spatial image tokens read by three attention blocks, and a
# distribution over 16 distances.  Started from the policy it ranks better than pooled features
# with a regression (value_layers=0, value_bins=0) on both languages: CSG2D 0.281 after 30 minutes
# against 0.269 after 40 (0.245 for the same network from scratch), TinySVG 0.510 against 0.486
# at equal time.
_VALUE = {"cpu": dict(encoder="nf_micro", d_model=64, prefix_tokens=16, encoder_stride=16,
                      prefix_norm=True, value_layers=3, value_bins=16)}
_RECIPES = {"policy": _POLICY, "value": _VALUE}  # per kind, per preset, over _MODEL
_TRAIN = {
    "smoke": dict(steps=30, batch_size=8, lr=1e-3, warmup_steps=5, workers=0, bucket_batches=2,
                  log_every=5,
                  eval_every=30, eval_problems=8, checkpoint_every=15),
    "cpu": dict(steps=25_000, batch_size=32, lr=1e-3, warmup_steps=500, workers=1,
                bucket_batches=8,
                log_every=100, eval_every=2500, eval_problems=128, checkpoint_every=1000),
    "paper": dict(steps=1_000_000, batch_size=32, lr=3e-4, warmup_steps=1000, workers=8,
                  bucket_batches=8,
                  log_every=500, eval_every=20_000, eval_problems=256, checkpoint_every=10_000),
}


def preset(name: str, kind: str = "policy", env: str = "csg2d",
           ablations: tuple[str, ...] = (), rho: float | None = None
           ) -> tuple[ModelConfig, TrainConfig, ExampleConfig]:
    """The model, training and example configs of a preset for one kind of model and language."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; kinds: {', '.join(KINDS)}")
    for ablation in ablations:
        if ablation not in ABLATIONS:
            raise ValueError(f"unknown ablation {ablation!r}; ablations: {', '.join(ABLATIONS)}")
    language = make_env(env)
    if kind == "repl" and env not in ("csg2d", "csg2d-sketch"):
        raise ValueError("the REPL Flow baseline is defined for CSG2D only")
    tokenizer = Tokenizer(language.grammar, _MODEL[name]["max_positions"])
    sees_current = "no_current_image" not in ablations
    model = ModelConfig(kind=kind, env=env, channels=language.channels,
                        vocab_size=tokenizer.vocab_size, pos_offset=tokenizer.pos_offset,
                        use_current_image=sees_current,
                        footprints=(kind == "policy" and name in _POLICY and sees_current
                                    and language.has_footprints),
                        **{**_MODEL[name], **_RECIPES.get(kind, {}).get(name, {})})
    examples = ExampleConfig(image_size=model.image_size,
                             masked_loss=kind == "policy" and name in _POLICY)
    if "no_reverse_path" in ablations:
        examples = replace(examples, mode="last_step")
    if "no_noising" in ablations:
        examples = replace(examples, rho=1.0)
    if rho is not None:
        examples = replace(examples, rho=rho)
    return model, TrainConfig(**_TRAIN[name]), examples


def apply_overrides(model: ModelConfig, train: TrainConfig, examples: ExampleConfig,
                    items: list[str] | tuple[str, ...]
                    ) -> tuple[ModelConfig, TrainConfig, ExampleConfig]:
    """Override config fields from ``key=value`` strings (values are Python literals).

    ``d_model=64`` sets a ModelConfig field, ``examples.rho=0.1`` an ExampleConfig field and
    ``train.lr=3e-4`` a TrainConfig field.  An unknown field or a malformed value is a
    ``ValueError`` that names it.
    """
    targets = {"model": model, "examples": examples, "train": train}
    changes: dict[str, dict] = {name: {} for name in targets}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not key=value")
        section, _, name = key.rpartition(".")
        section = section or "model"
        if section not in targets:
            raise ValueError(f"override {item!r}: unknown section {section!r} "
                             "(model fields take no prefix; examples.* and train.* the others)")
        known = {f.name for f in fields(targets[section])}
        if name not in known:
            raise ValueError(f"override {item!r}: {type(targets[section]).__name__} has no field "
                             f"{name!r}; fields: {', '.join(sorted(known))}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare word such as nf_micro is a string
        current = getattr(targets[section], name)
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if current is not None and value is not None and type(value) is not type(current):
            raise ValueError(f"override {item!r}: {name} takes {type(current).__name__} values "
                             f"(now {current!r}), not {type(value).__name__} ones")
        changes[section][name] = value
    return (replace(model, **changes["model"]), replace(train, **changes["train"]),
            replace(examples, **changes["examples"]))


@dataclass(frozen=True)
class ShippedModel:
    """A checkpoint that ships in ``results/checkpoints/``: how ``tdlib train`` (re)makes it."""

    env: str
    kind: str
    steps: int
    bucket_batches: int = 8
    options: tuple[str, ...] = ()  # further ``tdlib train`` arguments: ablations, --set ...
    init: str = ""  # the shipped model whose weights start the run (``tdlib train --init``)
    stop_at: int | None = None  # where a run cut short by a time limit stopped (of ``steps``)


def _set(*items: str) -> tuple[str, ...]:
    return tuple(arg for item in items for arg in ("--set", item))


# The Rainbow ablation arms (Figure 5): the cpu policy at 2 layers, 16,000 steps (512k examples)
# each (at 4,000 steps no arm improves on the search's autoregressive start).
# Policies trained before the cpu recipe had footprints
_NO_FOOTPRINTS = _set("footprints=False")
_RAINBOW_ARM = _set("n_layers=2", "train.eval_every=4000") + _NO_FOOTPRINTS
_RAINBOW_STEPS = 16_000

# What ships in results/checkpoints/, each trained on the 2-core CPU (the command, and for a run
# made in pieces every piece, is in its model.json).  The AR and REPL models of CSG2D were
# trained without length bucketing (bucket_batches 1).
SHIPPED_MODELS = {
    # the CSG2D policy's first 158,000 steps (5.06 M examples), made in pieces by tools/policy_ab.py
    "csg2d_policy_158k": ShippedModel("csg2d", "policy", 158_000, 8, _NO_FOOTPRINTS),
    # trained further from those weights on fresh examples (seed 1), a third cosine: 1.66 M
    # examples in 87 minutes (its model.json keeps the earlier pieces' records)
    "csg2d_policy_210k": ShippedModel("csg2d", "policy", 52_000, 8,
                                      ("--lr", "0.0007", "--seed", "1") + _NO_FOOTPRINTS,
                                      init="csg2d_policy_158k"),
    # the same network with footprints, trained further from those weights (3.84 M examples,
    # 3.8 hours in four pieces)
    "csg2d_policy_330k": ShippedModel("csg2d", "policy", 120_000, 8,
                                      ("--lr", "0.0004", "--seed", "3")
                                      + _set("train.eval_every=10000", "train.eval_problems=256"),
                                      init="csg2d_policy_210k"),
    # the policy that search uses: 25 more minutes from those weights with 30 % of the training
    # starts taken from programs the policy and the AR model reach (tools/own_states.py; an
    # 18,000-step cosine that the time limit stopped at 11,985). About 10.9 M examples and 10.6
    # CPU-hours from scratch, counting the three networks above
    "csg2d_policy": ShippedModel("csg2d", "policy", 18_000, 8,
                                 ("--lr", "0.0003", "--seed", "2")
                                 + _set("examples.own_states=results/training/csg2d_own_states/"
                                        "states.jsonl", "examples.own_states_share=0.3",
                                        "train.eval_every=4000", "train.eval_problems=256"),
                                 init="csg2d_policy_330k", stop_at=11_985),
    # starts from the policy's first 158,000 steps (the cpu value recipe); made in two pieces,
    # 25,000 steps and a warm restart to 61,000 (the learning rate's second cosine)
    "csg2d_value_61k": ShippedModel("csg2d", "value", 61_000, 8, _set("train.restart_step=25000"),
                                    init="csg2d_policy_158k"),
    # the value network that search uses: 20 more minutes from those weights, trained to predict
    # the number of Algorithm 1 path steps left that change the image at 64 px (a 22,000-step
    # cosine that the time limit stopped at 17,450)
    "csg2d_value": ShippedModel("csg2d", "value", 22_000, 8,
                                ("--lr", "0.0003", "--seed", "2")
                                + _set("examples.value_target=visible"),
                                init="csg2d_value_61k", stop_at=17_450),
    "csg2d_ar": ShippedModel("csg2d", "ar", 8_000, 1),
    "csg2d_repl": ShippedModel("csg2d", "repl", 6_000, 1),
    # fine-tuned on sketches from the CSG2D policy's first 5 hours (the same grammar and network)
    "csg2d-sketch_policy_14k": ShippedModel("csg2d-sketch", "policy", 14_000, 8,
                                            ("--lr", "0.0003") + _NO_FOOTPRINTS,
                                            init="csg2d_policy_158k"),
    # trained further from those weights on fresh sketches (seed 1), a second cosine: the sketch
    # policy that search uses (its model.json records the network it started from)
    "csg2d-sketch_policy": ShippedModel("csg2d-sketch", "policy", 40_000, 8,
                                        ("--lr", "0.0003", "--seed", "1") + _NO_FOOTPRINTS,
                                        init="csg2d-sketch_policy_14k"),
    "csg2d-sketch_ar": ShippedModel("csg2d-sketch", "ar", 8_000),
    # the TinySVG policy's first hour
    "tinysvg_policy_26k": ShippedModel("tinysvg", "policy", 26_000, 8, _NO_FOOTPRINTS),
    # trained further from those weights on fresh examples (seed 1), a second cosine: the
    # policy that search uses (its model.json records the network it started from)
    "tinysvg_policy": ShippedModel("tinysvg", "policy", 50_000, 8,
                                   ("--seed", "1") + _NO_FOOTPRINTS, init="tinysvg_policy_26k"),
    # starts from the policy's encoder and blocks (the cpu value recipe)
    "tinysvg_value": ShippedModel("tinysvg", "value", 27_000, 8, init="tinysvg_policy"),
    "tinysvg_ar": ShippedModel("tinysvg", "ar", 6_000),
    "rainbow_ar": ShippedModel("rainbow", "ar", 3_000),
    "rainbow_policy_full": ShippedModel("rainbow", "policy", _RAINBOW_STEPS, 8, _RAINBOW_ARM),
    "rainbow_policy_no_current_image": ShippedModel(
        "rainbow", "policy", _RAINBOW_STEPS, 8, ("--ablation", "no_current_image") + _RAINBOW_ARM),
    "rainbow_policy_no_reverse_path": ShippedModel(
        "rainbow", "policy", _RAINBOW_STEPS, 8, ("--ablation", "no_reverse_path") + _RAINBOW_ARM),
    "rainbow_policy_no_noising": ShippedModel(
        "rainbow", "policy", _RAINBOW_STEPS, 8, ("--ablation", "no_noising") + _RAINBOW_ARM),
    **{f"rainbow_policy_rho{rho}": ShippedModel("rainbow", "policy", _RAINBOW_STEPS, 8,
                                                ("--rho", str(rho)) + _RAINBOW_ARM)
       for rho in (0.0, 0.1, 0.5)},
}


def shipped_folder(name: str):
    """Where a shipped checkpoint lives (it may not have been trained yet)."""
    if name not in SHIPPED_MODELS:
        raise ValueError(f"unknown shipped model {name!r}; known: {', '.join(SHIPPED_MODELS)}")
    return project_root() / "results" / "checkpoints" / name


def shipped_command(name: str) -> list[str]:
    """The ``tdlib train`` arguments that (re)make a shipped checkpoint."""
    entry = SHIPPED_MODELS[name]
    return ["--env", entry.env, "--model", entry.kind, "--preset", "cpu",
            "--steps", str(entry.steps), "--bucket-batches", str(entry.bucket_batches),
            *entry.options, *(("--init", str(shipped_folder(entry.init))) if entry.init else ()),
            *(("--stop-at", str(entry.stop_at)) if entry.stop_at else ()),
            "--out", str(shipped_folder(name))]
