"""Speed benchmarks of tdlib against the public code's figures (DECISIONS.md §4).

    python benchmarks/run.py --output results/benchmarks.md      # what `make bench` runs
    python benchmarks/run.py --only render                        # a subset, printed only
    python benchmarks/run.py --only "TD search" "AR rejection" --output results/benchmarks.md \
        --update                                                  # re-measure some rows

Each benchmark runs in this one process on one core's worth of Python, times a fixed batch of
work several times and reports the median rate.  Inputs are made before the clock starts (the
training and search loops render trees, not text), except where parsing is what is measured.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from report import commit, evaluation_speed, machine, table, updated_report

import tdlib
from tdlib.checkpoint import load_model
from tdlib.decode import Decoder
from tdlib.edit_paths import edit_path
from tdlib.examples import ExampleConfig, ExampleMaker
from tdlib.footprints import program_footprints
from tdlib.images import program_images
from tdlib.methods import Models, SearchConfig, solve_problem
from tdlib.metrics import mutation_problems
from tdlib.model import build_model
from tdlib.presets import preset
from tdlib.tasks import make_task
from tdlib.testsets import load
from tdlib.tokens import Tokenizer
from tdlib.trainer import Trainer


@dataclass
class Bench:
    name: str
    unit: str
    setup: Callable[[], Callable[[], int]]  # returns a closure doing work, returning item count
    public: float | None  # public code, items/s (DECISIONS.md §4)
    target: float | None  # the speed this project requires, items/s


def _trees(env_name: str, n: int, lo: int = 2, hi: int = 8, seed: int = 0):
    env = tdlib.make_env(env_name)
    rng = np.random.default_rng(seed)
    return env, [env.sample(rng, lo, hi) for _ in range(n)]


def render_trees(env_name: str, size: int = 128):
    def setup():
        env, trees = _trees(env_name, 2000)

        def work():
            for tree in trees:
                env.render(tree, size)
            return len(trees)
        return work
    return setup


def footprints(env_name: str, size: int = 64):
    """What a footprints policy adds per program it reads (tdlib.footprints), at its 64 px."""
    def setup():
        env, trees = _trees(env_name, 500)

        def work():
            for tree in trees:
                program_footprints(env, tree, size)
            return len(trees)
        return work
    return setup


def parse_text(env_name: str, primitives: int):
    def setup():
        env, trees = _trees(env_name, 2000, primitives, primitives)
        texts = [str(t) for t in trees]

        def work():
            for text in texts:
                env.parse(text)
            return len(texts)
        return work
    return setup


def parse_and_render(env_name: str):
    def setup():
        env, trees = _trees(env_name, 2000)
        texts = [str(t) for t in trees]

        def work():
            for text in texts:
                env.render(text)
            return len(texts)
        return work
    return setup


def sample(env_name: str):
    def setup():
        env = tdlib.make_env(env_name)
        rng = np.random.default_rng(0)

        def work():
            for _ in range(5000):
                env.sample(rng, 2, 8)
            return 5000
        return work
    return setup


def training_examples(env_name: str, size: int = 128):
    def setup():
        maker = ExampleMaker(tdlib.make_env(env_name), ExampleConfig(image_size=size))
        rng = np.random.default_rng(0)

        def work():
            for _ in range(500):
                example = maker.example(rng)
                example.current.tokens  # the policy's context
                example.edit_position
            return 500
        return work
    return setup


def mutation(env_name: str):
    def setup():
        env, trees = _trees(env_name, 2000)
        mutator = env.mutator()
        rng = np.random.default_rng(0)

        def work():
            for tree in trees:
                mutator.mutate(tree, rng)
            return len(trees)
        return work
    return setup


def noise_and_path(env_name: str):
    def setup():
        env, trees = _trees(env_name, 1000)
        mutator = env.mutator()
        rng = np.random.default_rng(0)

        def work():
            for tree in trees:
                steps = int(rng.integers(1, 6))
                start = mutator.chain(tree, steps, rng)[0][-1]
                edit_path(start, tree, rng)
            return len(trees)
        return work
    return setup


def sketches(size: int = 128):
    def setup():
        env, trees = _trees("csg2d-sketch", 1000)
        rng = np.random.default_rng(0)

        def work():
            for tree in trees:
                env.observe(tree, rng, size)
            return len(trees)
        return work
    return setup


SHIPPED_POLICY = Path(__file__).resolve().parent.parent / "results" / "checkpoints" / "csg2d_policy"
POLICY = SHIPPED_POLICY  # --policy replaces it (e.g. a smaller network from tools/policy_ab.py)
COMPILE = False  # --compile: torch.compile the policy's encoder, prefill and cached call


def decoded_edits(batch: int = 64, samples: int = 1, temperature: float = 0.0):
    """Constrained edits of the cpu-preset CSG2D policy (the shipped one when present): one
    greedy edit per program, or ``samples`` sampled edits per program (batch = programs x
    samples), as a search asks for them."""
    def setup():
        env = tdlib.make_env("csg2d")
        if (POLICY / "model.json").exists():
            model, _ = load_model(POLICY)
        else:
            torch.manual_seed(0)
            model = build_model(preset("cpu", "policy", "csg2d")[0]).eval()
        if COMPILE:  # compiled during the warm-up call, which is not timed
            model.encoder = torch.compile(model.encoder, dynamic=True)
            model.prefill = torch.compile(model.prefill, dynamic=True)
            model.extend = torch.compile(model.extend, dynamic=True)
        size = model.config.image_size
        decoder = Decoder(model, Tokenizer(env.grammar, model.config.max_positions))
        per_call = batch // samples
        problems = mutation_problems(env, per_call * 4, 1, seed=1)
        batches = []
        for i in range(0, len(problems), per_call):
            chunk = problems[i:i + per_call]
            starts = [s for _, s in chunk]
            targets = [t for t, _ in chunk]
            batches.append((starts, program_images(env, starts, size),
                            program_images(env, targets, size)))
        generator = torch.Generator().manual_seed(0)

        def work():
            for starts, cur, tgt in batches:
                decoder.edits(starts, cur, tgt, temperature, generator, samples=samples)
            return len(problems) * samples
        return work
    return setup


def search_expansions(method: str = "td-search", problems: int = 2, budget: int = 1000):
    """Node expansions per second (distinct programs made, rendered and goal-checked) of
    ``tdlib evaluate``'s methods on hard CSG2D problems with the shipped models (TD search:
    beam 64, k = 3, ranked by the value network; AR: rejection sampling at T = 1)."""
    def setup():
        _, testset = load(Path(__file__).resolve().parents[1] / "results" / "testsets"
                          / "csg2d_hard.jsonl")
        env = tdlib.make_env("csg2d")
        models = Models(env, {"policy": POLICY})
        config = SearchConfig(method, budget=budget)
        chosen = testset[:problems]

        def work():
            return sum(solve_problem(env, p, models, config).expansions for p in chosen)
        return work
    return setup


def training_run(kind: str = "policy", env_name: str = "csg2d", steps: int = 160):
    """The cpu preset's trainer end to end (examples made in a DataLoader worker)."""
    def setup():
        model, train, examples = preset("cpu", kind, env_name)
        train = replace(train, steps=10 ** 9, log_every=10 ** 9, eval_every=10 ** 9,
                        checkpoint_every=10 ** 9)
        task = make_task(kind, env_name, model, examples, 0)
        folder = tempfile.mkdtemp(prefix="tdlib-bench-")
        trainer = Trainer(task, train, folder, progress=False)
        state = {"done": 0}

        def work():
            state["done"] += steps
            trainer.fit(steps=state["done"])
            return steps * train.batch_size
        return work
    return setup


BENCHES = [
    Bench("render csg2d tree 128px", "programs/s", render_trees("csg2d"), 593, 6000),
    Bench("render tinysvg tree 128px", "programs/s", render_trees("tinysvg"), 150, 1500),
    Bench("render rainbow tree 128px", "programs/s", render_trees("rainbow"), 410, None),
    Bench("footprints csg2d 64px", "programs/s", footprints("csg2d"), None, None),
    Bench("footprints tinysvg 64px", "programs/s", footprints("tinysvg"), None, None),
    Bench("parse csg2d text, 6 primitives", "programs/s", parse_text("csg2d", 6), None, 3000),
    Bench("parse+render csg2d text 128px", "programs/s", parse_and_render("csg2d"), 593, None),
    Bench("parse+render tinysvg text 128px", "programs/s", parse_and_render("tinysvg"), 150, None),
    Bench("sample csg2d (2-8 primitives)", "programs/s", sample("csg2d"), 2553, 12000),
    Bench("sample tinysvg (2-8 primitives)", "programs/s", sample("tinysvg"), 1138, None),
    Bench("sample rainbow (2-8 primitives)", "programs/s", sample("rainbow"), 2195, None),
    Bench("one mutation csg2d", "mutations/s", mutation("csg2d"), 747, 7470),
    Bench("one mutation tinysvg", "mutations/s", mutation("tinysvg"), 351, 3510),
    Bench("one mutation rainbow", "mutations/s", mutation("rainbow"), 714, 7140),
    Bench("noise + full path csg2d (no render)", "pairs/s", noise_and_path("csg2d"), 186, None),
    Bench("noise + full path tinysvg (no render)", "pairs/s", noise_and_path("tinysvg"), 20, None),
    Bench("training examples csg2d 128px", "examples/s", training_examples("csg2d"), 93, 1000),
    Bench("training examples rainbow 128px", "examples/s", training_examples("rainbow"), 82, 800),
    Bench("training examples tinysvg 128px", "examples/s", training_examples("tinysvg"), 17, 200),
    Bench("sketch observation csg2d 128px", "sketches/s", sketches(), None, None),
    Bench("decoded edits csg2d, cpu policy, batch 64", "edits/s", decoded_edits(), None, 2000),
    Bench("decoded edits csg2d, cpu policy, batch 256", "edits/s", decoded_edits(256), None, None),
    Bench("decoded edits csg2d, cpu policy, 8 programs x 8 samples at T=1", "edits/s",
          decoded_edits(64, 8, 1.0), None, None),
    Bench("TD search csg2d hard, beam 64 k 3, value-ranked", "expansions/s",
          search_expansions("td-search"), 7.6, 1000),
    Bench("AR rejection csg2d hard, T=1", "expansions/s", search_expansions("ar"), None, None),
    Bench("training csg2d policy, cpu preset, data included", "examples/s", training_run(), None,
          300),
]


def measure(bench: Bench, repeats: int) -> float:
    work = bench.setup()
    work()  # warm-up: caches, surfaces, lazily built tables
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = work()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, help="write the markdown report here")
    parser.add_argument("--only", nargs="+", default=[""],
                        help="run the benchmarks whose name contains one of these")
    parser.add_argument("--update", action="store_true",
                        help="with --output: replace only the re-measured rows of the existing "
                             "report, keeping the others and noting when each part was measured")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats, median kept (5)")
    parser.add_argument("--policy", type=Path, default=SHIPPED_POLICY,
                        help="checkpoint folder the decoding rows use (default: the shipped "
                             "CSG2D policy)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the policy for the decoding rows (compiling, about a "
                             "minute on two cores, happens in the untimed warm-up)")
    args = parser.parse_args(argv)
    global POLICY, COMPILE
    COMPILE = args.compile
    shipped = args.policy.resolve() == SHIPPED_POLICY
    if not shipped and not (args.policy / "model.json").exists():
        parser.error(f"{args.policy} holds no model.json")
    POLICY = args.policy
    rows = []
    for bench in BENCHES:
        if not any(part in bench.name for part in args.only):
            continue
        rate = measure(bench, args.repeats)
        rows.append((bench, rate))
        print(f"{bench.name:40s} {rate:12,.0f} {bench.unit}", flush=True)
    report = "\n".join([
        "# Benchmarks",
        "",
        f"Measured {datetime.date.today().isoformat()} at commit {commit()} with "
        f"`python benchmarks/run.py --output results/benchmarks.md` (`make bench`).",
        f"Machine: {machine()}. One process; median of {args.repeats} timed repeats.",
        *([f"Decoding rows use the policy in `{args.policy}`, not the shipped one."]
          if not shipped else []),
        *(["Decoding rows use `torch.compile` (`--compile`)."] if args.compile else []),
        "Public code: the authors' figures on a 2-core CPU machine like this one "
        "(`DECISIONS.md` §4); its render figures include parsing "
        "and its canvases differ (TinySVG 224 px, Rainbow 64 px; ours are all 128 px).",
        "",
        table(rows),
        "",
        evaluation_speed(),
    ])
    if args.output and args.update and args.output.exists():
        report = updated_report(args.output.read_text(), rows, args.repeats)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report)
        print(f"wrote {args.output}")
    return 0 if all(b.target is None or r >= b.target for b, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
