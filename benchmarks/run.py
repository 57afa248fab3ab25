"""Speed benchmarks of tdlib against the public code's figures (REFERENCE.md section 4).

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
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

import tdlib


@dataclass
class Bench:
    name: str
    unit: str
    setup: Callable[[], Callable[[], int]]  # returns a closure doing work, returning item count
    public: float | None  # public code, items/s (REFERENCE.md section 4)
    target: float | None  # the bar, items/s


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
        from tdlib.examples import ExampleConfig, ExampleMaker
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
        from tdlib.paths import edit_path
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
        import torch
        from tdlib.checkpoint import load_model
        from tdlib.decode import Decoder
        from tdlib.evaluate import images, mutation_problems
        from tdlib.model import build_model
        from tdlib.presets import preset
        from tdlib.tokens import Tokenizer
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
            batches.append((starts, images(env, starts, size), images(env, [t for t, _ in chunk], size)))
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
        from tdlib.experiment import Models, SearchConfig, solve
        from tdlib.testsets import load
        _, testset = load(Path(__file__).resolve().parents[1] / "results" / "testsets"
                          / "csg2d_hard.jsonl")
        env = tdlib.make_env("csg2d")
        models = Models(env, {"policy": POLICY})
        config = SearchConfig(method, budget=budget)
        chosen = testset[:problems]

        def work():
            return sum(solve(env, p, models, config).expansions for p in chosen)
        return work
    return setup


def training_run(kind: str = "policy", env_name: str = "csg2d", steps: int = 160):
    """The cpu preset's trainer end to end (examples made in a DataLoader worker)."""
    def setup():
        import tempfile
        from tdlib.presets import preset
        from tdlib.tasks import make_task
        from tdlib.train import Trainer
        from dataclasses import replace
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


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def commit() -> str:
    try:
        # "-dirty": measured on uncommitted changes (typically those committed with the report).
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(rows: list[tuple[Bench, float]]) -> str:
    lines = ["| benchmark | tdlib | public code | ratio | bar | met |",
             "|---|---:|---:|---:|---:|:---:|"]
    for bench, rate in rows:
        public = f"{bench.public:,.0f}" if bench.public else "—"
        ratio = f"{rate / bench.public:.1f}x" if bench.public else "—"
        target = f"{bench.target:,.0f}" if bench.target else "—"
        met = ("yes" if rate >= bench.target else "**no**") if bench.target else ""
        lines.append(f"| {bench.name} ({bench.unit}) | {rate:,.0f} | {public} | {ratio} | "
                     f"{target} | {met} |")
    return "\n".join(lines)


def updated_report(old: str, rows: list[tuple[Bench, float]], repeats: int) -> str:
    """``old`` with the table rows of the re-measured benchmarks replaced (new ones added at the
    end of the table), a line saying when and at which commit they were measured, and the
    evaluation section rebuilt."""
    fresh = {line.split(" | ")[0]: line for line in table(rows).splitlines()[2:]}
    lines = old.split("\n## Search, from the committed evaluations")[0].rstrip("\n").splitlines()
    seen, out = set(), []
    for line in lines:
        key = line.split(" | ")[0]
        if key in fresh:
            line, _ = fresh[key], seen.add(key)
        out.append(line)
    last_row = max(i for i, line in enumerate(out) if line.startswith("| "))
    out[last_row + 1:last_row + 1] = [fresh[k] for k in fresh if k not in seen]
    names = ", ".join(f"\"{b.name}\"" for b, _ in rows)
    note = (f"Re-measured {datetime.date.today().isoformat()} at commit {commit()} with "
            f"`--update` (median of {repeats}): {names}.")
    header_end = next(i for i, line in enumerate(out) if line.startswith("| benchmark"))
    out.insert(header_end - 1, note)
    return "\n".join(out + ["", evaluation_speed()])


def evaluation_speed() -> str:
    """Search speed read from the committed evaluations (``results/eval/``): per method, node
    expansions per second of search time and the median seconds to a solution (issue 14 §5),
    as the runs measured them (single-threaded workers, two at a time on the 2 cores)."""
    from tdlib.results import load_runs, method_label
    runs = load_runs(Path(__file__).resolve().parents[1] / "results" / "eval")
    if runs.empty:
        return ""
    lines = ["## Search, from the committed evaluations",
             "",
             "Read from `results/eval/` (written by `make evaluate`: single-threaded workers, two "
             "at a time on the two cores, so one process had one core): expansions per second of "
             "search time, and the median seconds to a solution over the solved problems "
             "(goal checks and rendering included; model loading not).",
             "",
             "| test set | method | runs | problems solved | expansions/s | median s to solve |",
             "|---|---|---:|---:|---:|---:|"]
    for (testset, method, score), group in runs.groupby(["testset", "method", "score"]):
        solved = group[group["solved"]]
        rate = group["spent"].sum() / max(group["seconds"].sum(), 1e-9)
        median = f"{solved['seconds'].median():.2f}" if len(solved) else "—"
        lines.append(f"| {testset} | {method_label(method, score)} | {group['file'].nunique()} | "
                     f"{len(solved)} / {len(group)} | {rate:,.0f} | {median} |")
    return "\n".join(lines + [""])


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
        "(`../shared/design/REFERENCE.md` section 4); its render figures include parsing and its "
        "canvases differ (TinySVG 224 px, Rainbow 64 px; ours are all 128 px).",
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
