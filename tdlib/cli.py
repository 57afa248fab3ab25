"""The ``tdlib`` command line.

    tdlib envs
    tdlib render --env csg2d "(- (Circle 4 8 8) (Circle 2 8 8))" -o ring.png [--size 128]
    tdlib sample --env tinysvg -n 5 --min-primitives 2 --max-primitives 8 --seed 0
    tdlib svg --env csg2d "<program>" -o out.svg
    tdlib mutate --env csg2d "<program>" --steps 3 --seed 0
    tdlib path --env csg2d "<program A>" "<program B>"
    tdlib testset --env csg2d --hard --n 256 --seed 0 -o results/testsets/csg2d_hard.jsonl
    tdlib train --env csg2d --model policy --preset cpu --out runs/csg2d_policy [--resume]
    tdlib evaluate --method td-search --testset results/testsets/csg2d_hard.jsonl -o out.csv
    tdlib solve --env csg2d --image icon.png -o out/icon

A malformed program exits with status 2 and one line naming the column and what was expected.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Sequence

import numpy as np

from tdlib import testsets
from tdlib.arguments import (UsageError, device, fraction, image_size, non_negative_int,
                             positive_int, program_text)
from tdlib.edit_paths import iter_edit_steps
from tdlib.env import list_envs, make_env
from tdlib.grammar import ProgramSyntaxError
from tdlib.layout import project_root

# The commands that load torch (solve, train, evaluate) or matplotlib (render) import their
# modules when they run, so that `tdlib --help` and the light commands start in a fraction of
# a second.


def _add_env(parser: argparse.ArgumentParser, names: Sequence[str] | None = None) -> None:
    names = list(names or list_envs())
    parser.add_argument("--env", required=True, choices=names, metavar="ENV",
                        help="language: " + ", ".join(names))


def _searchable() -> list[str]:
    """The languages with a shipped policy (``results/checkpoints/<language>_policy``): the ones
    ``tdlib solve`` can search in.  Without shipped checkpoints, every language (the solver then
    says which network is missing)."""
    shipped = project_root() / "results" / "checkpoints"
    return [name for name in list_envs()
            if (shipped / f"{name}_policy" / "model.json").exists()] or list(list_envs())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tdlib",
        description="Diffusion on syntax trees: parse, sample, render and export programs "
                    "of the paper's languages.",
        epilog="Run 'tdlib COMMAND --help' for the options of one command.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("envs", help="list languages, their grammars and primitives",
                   description="List the languages, their compiled grammars and primitives.")

    render = sub.add_parser("render", help="render a program to a PNG image",
                            description="Render a program to PNG (CSG2D: black ink on white).")
    _add_env(render)
    render.add_argument("program", help="program text, e.g. \"(Circle 4 8 8)\"; "
                        "- reads it from standard input, @FILE from a file")
    render.add_argument("-o", "--output", required=True, help="PNG file to write")
    render.add_argument("--size", type=image_size, default=128, help="image size in pixels (128)")

    sample = sub.add_parser("sample", help="print random programs of a given size",
                            description="Print random programs (ConstrainedSample), one a line.")
    _add_env(sample)
    sample.add_argument("-n", type=non_negative_int, default=1, help="how many programs (1)")
    sample.add_argument("--min-primitives", type=non_negative_int, default=1, help="fewest primitives (1)")
    sample.add_argument("--max-primitives", type=non_negative_int, default=8, help="most primitives (8)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (0)")

    svg = sub.add_parser("svg", help="export a program as SVG",
                         description="Export a program as SVG that draws like 'tdlib render'.")
    _add_env(svg)
    svg.add_argument("program", help="program text (- standard input, @FILE a file)")
    svg.add_argument("-o", "--output", help="SVG file to write (default: standard output)")
    svg.add_argument("--size", type=image_size, default=128, help="canvas size in pixels (128)")

    mutate = sub.add_parser("mutate", help="apply random small mutations, showing each edit",
                            description="Apply random small mutations (the forward process), "
                                        "printing each program with a caret line under the "
                                        "edited span, as in the paper's Appendix A.")
    _add_env(mutate)
    mutate.add_argument("program", help="program text (- standard input, @FILE a file)")
    mutate.add_argument("--steps", type=non_negative_int, default=1, help="how many mutations (1)")
    mutate.add_argument("--seed", type=int, default=0, help="random seed (0)")
    mutate.add_argument("--scheme", choices=["count", "rule", "uniform"], default="count",
                        help="how the mutated node is chosen (count)")

    path = sub.add_parser("path", help="print a tree edit path from one program to another",
                          description="Print the edit path (Algorithm 1, repeated) from program "
                                      "A to program B: each program, the edit under it.")
    _add_env(path)
    path.add_argument("source", help="program A (@FILE: from a file)")
    path.add_argument("target", help="program B (@FILE: from a file)")
    path.add_argument("--seed", type=int, default=0, help="random seed (0)")

    sub.add_parser("train", help="train a network: policy, value, ar or repl (see tdlib train --help)",
                   add_help=False)
    sub.add_parser("evaluate", help="run a search method on a test set (see tdlib evaluate --help)",
                   add_help=False)
    solve = sub.add_parser(
        "solve", help="find a program that draws an image (TD search with the shipped models)",
        description="Find a program that draws a picture (PNG or JPEG, any size, grey, RGB or "
                    "RGBA) or a program's render, with TD search. Prints whether the goal check "
                    "passed, then the program (last line); writes OUT.svg, OUT.png (target "
                    "beside result) and OUT.gif (the search's path) when -o is given.",
        epilog="Examples:\n  tdlib solve --env csg2d --image icon.png -o out/icon\n"
               "  tdlib solve --env csg2d --image drawing.jpg --sketch --budget 2000\n"
               "  tdlib solve --env tinysvg --program \"<program>\"",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_env(solve, _searchable())
    target = solve.add_mutually_exclusive_group(required=True)
    target.add_argument("--image", help="the picture to draw")
    target.add_argument("--program",
                        help="a program whose render is the target (- standard input, @FILE a "
                             "file)")
    solve.add_argument("--sketch", action="store_true",
                       help="the picture is a hand drawing (CSG2D; uses the CSG2D-Sketch models)")
    solve.add_argument("--budget", type=positive_int, default=5000,
                       help="programs compiled at most (5000)")
    solve.add_argument("--tolerance", type=fraction, default=None,
                       help="stop once a program's mean pixel error is at most this, in [0, 1] "
                            "(default: only the goal check stops early)")
    solve.add_argument("--patience", type=positive_int, default=None,
                       help="stop once this many programs in a row have not lowered the best "
                            "pixel error (default: 1000 for a picture, off for --program)")
    solve.add_argument("--no-refine", action="store_true",
                       help="return the search's program as found: no polishing of numbers, "
                            "no layer-by-layer fit, no removal of dead parts")
    solve.add_argument("--seed", type=int, default=0, help="random seed (0)")
    solve.add_argument("--beam", type=positive_int, default=64, help="beam size (64)")
    solve.add_argument("-k", type=positive_int, default=3, help="edits proposed per kept program (3)")
    for kind in ("policy", "value", "ar"):
        solve.add_argument(f"--{kind}", help=f"{kind} checkpoint folder (default: shipped)")
    solve.add_argument("--device", type=device, default="cpu",
                       help="where the networks run (cpu, cuda, cuda:1)")
    solve.add_argument("-o", "--output", help="prefix of the .svg, .png and .gif to write")
    solve.add_argument("--no-progress", action="store_true", help="no progress bar")
    testset = sub.add_parser("testset", help="generate a test set file (JSON lines)",
                             description="Generate a test set: a header line, then one problem "
                                         "a line. The same arguments give the same bytes.")
    _add_env(testset)
    testset.add_argument("--n", type=non_negative_int, default=256, help="number of problems (256)")
    testset.add_argument("--seed", type=int, default=0, help="test-set seed (0)")
    testset.add_argument("--hard", action="store_true",
                         help="keep only images at or above --percentile of LZ4 incompressibility")
    testset.add_argument("--percentile", type=float, default=95.0,
                         help="complexity percentile for --hard (95)")
    testset.add_argument("--min-primitives", type=non_negative_int, default=2, help="fewest primitives (2)")
    testset.add_argument("--max-primitives", type=non_negative_int, default=8, help="most primitives (8)")
    testset.add_argument("-o", "--output", required=True, help="JSON-lines file to write")
    return parser


def _cmd_testset(args, out) -> None:
    spec = testsets.TestSetSpec(args.env, n=args.n, seed=args.seed, hard=args.hard,
                                percentile=args.percentile, min_primitives=args.min_primitives,
                                max_primitives=args.max_primitives)
    header, problems = testsets.generate(spec)
    testsets.write(args.output, header, problems)
    print(f"wrote {args.output}: {len(problems)} problems from {header['candidates_drawn']} "
          f"candidates", file=out)


def _cmd_mutate(args, out) -> None:
    env = make_env(args.env)
    tree = env.parse(program_text(args.program))
    trees, edits = env.mutator(args.scheme).chain(tree, args.steps, args.seed)
    for before, edit in zip(trees, edits):
        print(before, file=out)
        print(edit.describe(before), file=out)
    print(trees[-1], file=out)


def _cmd_path(args, out) -> None:
    env = make_env(args.env)
    source = env.parse(program_text(args.source))
    target = env.parse(program_text(args.target))
    count = 0
    for step in iter_edit_steps(source, target, args.seed):  # written as found, then let go
        print(step.tree, file=out)
        print(step.edit.describe(step.tree), file=out)
        count += 1
    print(target, file=out)
    print(f"# {count} edit(s)", file=out)


def _cmd_envs(args, out) -> None:
    for name, description in list_envs().items():
        env = make_env(name)
        print(f"{name}: {description}", file=out)
        print(f"  primitives: {', '.join(env.primitives)}; image: {env.channels} channel(s)",
              file=out)
        for line in env.grammar.describe().splitlines():
            print(f"  {line}", file=out)


def _cmd_render(args, out) -> None:
    from tdlib.plotting import save_png  # matplotlib: see the note at the top
    env = make_env(args.env)
    image = env.render(program_text(args.program), size=args.size)
    save_png(args.output, env.display(image))
    print(f"wrote {args.output} ({args.size}x{args.size})", file=out)


def _cmd_sample(args, out) -> None:
    env = make_env(args.env)
    rng = np.random.default_rng(args.seed)
    try:
        for _ in range(args.n):
            print(env.sample(rng, args.min_primitives, args.max_primitives), file=out)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _cmd_svg(args, out) -> None:
    env = make_env(args.env)
    text = env.to_svg(program_text(args.program), size=args.size)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        print(f"wrote {args.output}", file=out)
    else:
        out.write(text)


def _cmd_solve(args, out) -> int:
    from tdlib.solver import solve, write_outputs  # torch: see the note at the top
    models = {k: getattr(args, k) for k in ("policy", "value", "ar") if getattr(args, k)}
    program = None if args.program is None else program_text(args.program)
    result = solve(args.env, args.image, program=program, budget=args.budget,
                   seed=args.seed, sketch=args.sketch, beam=args.beam, k=args.k,
                   tolerance=args.tolerance, patience=args.patience, refine=not args.no_refine,
                   models=models, device=args.device, progress=not args.no_progress)
    if args.output:
        env = make_env("csg2d-sketch" if args.sketch else args.env)
        for path in write_outputs(env, result, args.output):
            print(f"wrote {path}", file=out)
    searched = f"{result.expansions} programs in {result.seconds:.1f} s"
    if result.stopped == "interrupted":
        print(f"interrupted after {searched}; the best program so far:", file=out)
    elif not result.judged:
        print(f"a sketch has no clean target to check: after {searched}, the "
              f"one the value network ranks closest ({result.score:.1f} edits left)", file=out)
    elif result.solved:
        print(f"solved: the goal check passed after {searched}; mean pixel error "
              f"{result.score:.4f}, {result.primitives} primitives", file=out)
    else:
        reason = {"no improvement": "the best error stopped falling",
                  "close enough": "within the tolerance",
                  "budget": "the budget was spent"}.get(result.stopped, result.stopped)
        print(f"not solved by the goal check; stopped after {searched} ({reason}); mean "
              f"pixel error {result.score:.4f}, {result.primitives} primitives", file=out)
    print(result.program, file=out)
    return 130 if result.stopped == "interrupted" else 0


COMMANDS = {"solve": _cmd_solve, "envs": _cmd_envs, "render": _cmd_render, "sample": _cmd_sample, "svg": _cmd_svg,
            "mutate": _cmd_mutate, "path": _cmd_path, "testset": _cmd_testset}


def run_command(name: str, command) -> int:
    """Run ``command()`` (which returns an exit status) as the command ``tdlib NAME``: the one
    place where expected failures become one line on standard error and status 2 (a malformed
    program, a bad value, a file that cannot be read or written), Ctrl-C status 130, and an
    unexpected error keeps its traceback and says that it is a bug to report."""
    try:
        return command() or 0
    except KeyboardInterrupt:
        print(f"tdlib {name}: interrupted", file=sys.stderr)
        return 130
    except ProgramSyntaxError as err:
        print(f"tdlib {name}: malformed program: {err}", file=sys.stderr)
        return 2
    except (UsageError, ValueError) as err:
        print(f"tdlib {name}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        print(f"tdlib {name}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        print(f"tdlib {name}: this is a bug in tdlib; please report it to the project's issue "
              "tracker with the command line and the traceback above", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # the trainer owns its options (tdlib train --help)
        from tdlib.train import main as train_main  # torch: see the note at the top
        return run_command("train", lambda: train_main(argv[1:]))
    if argv[:1] == ["evaluate"]:  # so does the search evaluation (tdlib evaluate --help)
        from tdlib.evaluation import main as evaluate_main  # torch: see the note at the top
        return run_command("evaluate", lambda: evaluate_main(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args.command, lambda: COMMANDS[args.command](args, sys.stdout))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
