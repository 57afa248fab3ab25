"""The paper's search methods on one problem: their settings and the networks they read.

:class:`SearchConfig` names a method (TD search, TD rollouts, AR sampling, REPL Flow,
random-mutation search), its beam ranking and budget; :class:`Models` loads the checkpoints it
reads (the shipped ones of the language by default); :func:`run_search` runs it against a
target with :mod:`tdlib.search`'s algorithms, and :func:`solve_problem` on one test problem.
:mod:`tdlib.evaluation` runs a method over a whole test set; :func:`tdlib.solver.solve` on a
picture.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tdlib import search
from tdlib.checkpoint import load_model
from tdlib.decode import Decoder
from tdlib.images import image_batch
from tdlib.layout import project_root
from tdlib.presets import SHIPPED_MODELS, shipped_folder
from tdlib.seeds import text_key
from tdlib.tokens import Tokenizer
from tdlib.tree import SyntaxTree

METHODS = ("td-search", "td-rollout", "ar", "repl", "random-search")
SCORES = ("value", "logprob", "pixel", "oracle-path", "oracle-visible")
# the oracles rank by the true distance to the target program (search.DistanceScore): studies
# of what a perfect value network would do, on test problems only


@dataclass
class SearchConfig:
    """One method's settings (defaults: the paper's, DECISIONS.md §3)."""

    method: str = "td-search"
    budget: int = 5000
    seed: int = 0
    score: str = "value"
    beam: int = 64
    k: int = 3  # edits proposed per kept program
    temperature: float = 1.0  # for proposed edits and sampled programs
    starts: int = 1  # AR programs the search starts from (1: the greedy one, as the paper)
    # the AR model's temperature for the starts after the greedy one (the public code samples
    # its 64 starts at 0.1)
    start_temperature: float = 1.0
    chains: int = 32  # td-rollout
    max_steps: int = 100  # td-rollout

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; methods: {', '.join(METHODS)}")
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; scores: {', '.join(SCORES)}")
        if self.method == "random-search" and self.score == "logprob":
            raise ValueError("random-search proposes no log-probabilities: score by value or pixel")
        for name in ("budget", "beam", "k", "starts", "chains", "max_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.temperature <= 0 and self.method != "td-search":
            raise ValueError(f"{self.method} samples: it needs a temperature above 0")
        if self.temperature < 0:
            raise ValueError(f"the temperature must be >= 0, not {self.temperature}")
        if self.start_temperature <= 0:
            raise ValueError(f"the start temperature must be above 0, not {self.start_temperature}")


def default_model_folder(env_name: str, kind: str) -> Path:
    """The shipped checkpoint of a language's model, a folder that may not exist (no sketch
    value or REPL model ships: CSG2D-Sketch borrows CSG2D's)."""
    name = f"{env_name}_{kind}"
    if name not in SHIPPED_MODELS and env_name == "csg2d-sketch":
        name = f"csg2d_{kind}"
    if name not in SHIPPED_MODELS:
        return project_root() / "results" / "checkpoints" / name
    return shipped_folder(name)


class Models:
    """The networks of one evaluation, loaded on first use (``folders``: kind -> checkpoint)."""

    def __init__(self, env, folders: dict | None = None, device: str = "cpu"):
        self.env, self.device = env, device
        self.folders = {k: Path(v) for k, v in (folders or {}).items() if v}
        self._loaded: dict = {}

    def model(self, kind: str):
        if kind not in self._loaded:
            folder = self.folders.get(kind) or default_model_folder(self.env.name, kind)
            self._loaded[kind] = load_model(folder, self.device, kind=kind,
                                            env=self.env.name)[0]
        return self._loaded[kind]

    def decoder(self, kind: str):
        key = ("decoder", kind)
        if key not in self._loaded:
            model = self.model(kind)
            self._loaded[key] = Decoder(model, Tokenizer(self.env.grammar,
                                                         model.config.max_positions))
        return self._loaded[key]


def problem_seed(config: SearchConfig, index: int) -> int:
    """The seed of one problem's search: distinct per (seed, method, problem)."""
    return text_key(f"{config.seed}:{config.method}:{index}")


def observation(env, problem: dict, size: int) -> torch.Tensor:
    """``1 x C x size x size``: what the models see of a test problem's target (a sketch for
    CSG2D-Sketch, drawn from the problem's own seed)."""
    return image_batch([env.observe(env.parse(problem["program"]),
                                    random.Random(problem["seed"]), size)])


def solve_problem(env, problem: dict, models: Models, config: SearchConfig) -> search.Outcome:
    """Run one method on one test problem (a line of a test set)."""
    began = time.perf_counter()
    truth = env.parse(problem["program"])
    expansions = search.Expansions(env, truth, config.budget)
    outcome = run_search(env, expansions, lambda size: observation(env, problem, size), models,
                         config, problem_seed(config, int(problem["index"])), truth=truth)
    outcome.seconds = time.perf_counter() - began
    return outcome


def run_search(env, expansions: search.Expansions, observe, models: Models,
               config: SearchConfig, seed: int, score=None, truth=None) -> search.Outcome:
    """Run ``config.method`` against ``expansions``' goal; ``observe(size)`` gives what the
    models see of the target (``1 x C x size x size``).  ``score``: rank the beam of TD search or
    random-mutation search with this instead of ``config.score`` (a study's recording score);
    ``truth``: the target program, which only the oracle scores read."""
    if score is None and config.score.startswith("oracle-") and truth is None:
        raise ValueError(f"the {config.score} score ranks by the distance to the target program: "
                         "it needs one (a test problem), not a picture")
    torch.manual_seed(seed)
    method = config.method
    if method == "repl":
        decoder = models.decoder("repl")
        return search.repl_rollouts(expansions, decoder, observe(decoder.config.image_size),
                                    temperature=config.temperature, seed=seed)
    ar = models.decoder("ar")
    target = observe(ar.config.image_size)
    if method == "ar":
        return search.rejection(expansions, ar, target, temperature=config.temperature,
                                seed=seed)
    starts = ar_starts(env, ar, target, config.starts, seed, config.start_temperature)
    renders = search.Renders(env)  # the score's renders of kept programs serve the policy
    if method == "random-search":
        propose = search.RandomEdits(env, seed)
    else:
        policy = models.decoder("policy")
        propose = search.PolicyEdits(policy, env, observe(policy.config.image_size),
                                     config.temperature, seed, renders)
    if method == "td-rollout":
        return search.rollouts(expansions, starts, propose, config.chains, config.max_steps)
    return search.beam_search(expansions, starts, propose,
                              score if score is not None else
                              make_score(config.score, env, models, observe, renders, truth, seed),
                              config.beam, config.k)


def ar_starts(env, ar, target: torch.Tensor, n: int, seed: int, temperature: float = 1.0) -> list:
    """The greedy AR program, then (for ``n > 1``) ``n - 1`` programs sampled at
    ``temperature`` (a program drawn twice is checked once: it costs one expansion)."""
    programs = [SyntaxTree(ar.programs(target)[0][0], env.grammar)]
    if n > 1:
        generator = torch.Generator().manual_seed(seed)
        for node, _ in ar.programs(target, temperature, generator, samples=n - 1):
            programs.append(SyntaxTree(node, env.grammar))
    return programs


def make_score(name: str, env, models: Models, observe, renders=None, truth=None, seed: int = 0):
    """The beam's score called ``name`` (one of :data:`SCORES`); ``truth``, the target program,
    only for the oracle scores."""
    if name == "logprob":
        return search.LogprobScore()
    if name.startswith("oracle-"):
        return search.DistanceScore(env, truth, observe(models.model("ar").config.image_size),
                                    visible=name == "oracle-visible", seed=seed)
    kind = "value" if name == "value" else "ar"  # pixel: at the size the models read
    target = observe(models.model(kind).config.image_size)
    if name == "value":
        return search.ValueScore(models.model("value"), env, target, renders)
    return search.PixelScore(env, target)


def models_used(config: SearchConfig) -> tuple[str, ...]:
    """The kinds of network a method reads (its settings record which checkpoint made its rows)."""
    if config.method == "repl":
        return ("repl",)
    kinds = ["ar"]
    if config.method in ("td-search", "td-rollout"):
        kinds.append("policy")
    if config.method in ("td-search", "random-search") and config.score == "value":
        kinds.append("value")
    return tuple(kinds)
