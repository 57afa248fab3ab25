"""``tdlib train``: train a network of the paper from a preset (:class:`tdlib.trainer.Trainer`).

    tdlib train --env csg2d --model policy --preset cpu --out runs/policy [--resume]
    torchrun --nproc_per_node 2 -m tdlib.train --env csg2d --preset smoke --out runs/ddp

The preset gives the model, training and example configs (:func:`tdlib.presets.preset`);
ablations, ``--set KEY=VALUE`` overrides and the options below change them, and the checkpoint
records all three with the command line.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch.distributed as dist

from tdlib import checkpoint
from tdlib.arguments import device, non_negative_int, positive_float, positive_int
from tdlib.examples import ExampleConfig
from tdlib.model_config import KINDS, ModelConfig
from tdlib.presets import ABLATIONS, PRESETS, TrainConfig, apply_overrides, preset
from tdlib.tasks import make_task
from tdlib.trainer import Trainer


def configs_from_args(args) -> tuple[ModelConfig, TrainConfig, ExampleConfig]:
    model, train, examples = preset(args.preset, args.model, args.env, tuple(args.ablation),
                                    args.rho)
    overrides = {k: getattr(args, k) for k in ("steps", "batch_size", "lr", "workers", "seed",
                                               "bucket_batches")
                 if getattr(args, k) is not None}
    if args.init:
        overrides["init_from"] = args.init
    return apply_overrides(model, replace(train, **overrides), examples, args.set)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tdlib train", description="Train a network of the paper: the tree-diffusion policy, "
        "the value network, or a baseline (autoregressive, REPL Flow).",
        epilog="Examples:\n  tdlib train --env csg2d --model policy --preset cpu --out runs/policy\n"
               "  tdlib train --env csg2d --model policy --preset cpu --out runs/policy --resume\n"
               "  torchrun --nproc_per_node 2 -m tdlib.train --env csg2d --preset smoke --out runs/ddp",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="csg2d", help="language (tdlib envs lists them)")
    parser.add_argument("--model", default="policy", choices=KINDS,
                        help="policy (tree diffusion), value (edit distance), ar (the CSGNet "
                             "baseline), repl (REPL Flow); default policy")
    parser.add_argument("--preset", default="cpu", choices=PRESETS,
                        help="paper (the paper's sizes, for a GPU), cpu (what ships), smoke "
                             "(seconds); default cpu")
    parser.add_argument("--ablation", action="append", default=[], choices=ABLATIONS,
                        help="Figure 5's ablations: no_current_image (the current image is "
                             "blank), no_reverse_path (learn to undo the last mutation only), "
                             "no_noising (rho = 1: paths between random programs); may be "
                             "repeated")
    parser.add_argument("--rho", type=float, help="share of unrelated starts (paper: 0.2)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. d_model=64, examples.rho=0.1, "
                             "train.lr=3e-4 (may be repeated; stored in the checkpoint)")
    parser.add_argument("--init", metavar="DIR",
                        help="start from this checkpoint's weights (fine-tuning; same network "
                             "shape), e.g. results/checkpoints/csg2d_policy; from another kind "
                             "of network, the weights the two share (a value network takes a "
                             "policy's image encoder and transformer blocks)")
    parser.add_argument("--out", required=True, help="checkpoint folder")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--steps", type=positive_int,
                        help="optimizer steps, the length of the learning-rate schedule "
                             "(default: the preset's)")
    parser.add_argument("--batch-size", type=positive_int, dest="batch_size",
                        help="examples per step (default: the preset's)")
    parser.add_argument("--lr", type=positive_float,
                        help="peak learning rate of the cosine schedule (default: the preset's)")
    parser.add_argument("--workers", type=non_negative_int,
                        help="DataLoader worker processes making examples (0: in the trainer)")
    parser.add_argument("--bucket-batches", type=positive_int, dest="bucket_batches",
                        help="batches made at once and sorted by length (1: none)")
    parser.add_argument("--seed", type=int,
                        help="seed of the example stream and of the initial weights")
    parser.add_argument("--stop-at", type=positive_int, dest="stop_at", metavar="STEP",
                        help="stop after this step; the learning-rate schedule stays --steps "
                             "long (how a run cut short by a time limit is made again)")
    parser.add_argument("--max-minutes", type=positive_float, dest="max_minutes",
                        help="stop (checkpointed) after this much training in this call; "
                             "--resume continues on the same schedule")
    parser.add_argument("--device", type=device,
                        help="cpu, cuda, cuda:1 (default: cuda when present)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model_config, train_config, example_config = configs_from_args(args)
    except ValueError as err:
        print(f"tdlib train: {err}", file=sys.stderr)
        return 2
    if args.stop_at is not None and args.stop_at > train_config.steps:
        print(f"tdlib train: --stop-at {args.stop_at} is past the end of the schedule "
              f"(--steps {train_config.steps})", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"tdlib train: --out {out} is a file; it names the checkpoint folder",
              file=sys.stderr)
        return 2
    task = make_task(args.model, args.env, model_config, example_config, train_config.seed)
    if not args.resume and (out / checkpoint.RECORD_FILE).exists():
        print(f"tdlib train: {out} already holds a checkpoint; pass --resume to continue it or "
              "choose another --out", file=sys.stderr)
        return 2
    command = "tdlib train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    try:
        trainer = Trainer(task, train_config, out, resume=args.resume, device=args.device,
                          command=command, progress=not args.no_progress)
    except checkpoint.CheckpointError as err:
        print(f"tdlib train: {err}", file=sys.stderr)
        return 2
    try:
        trainer.fit(steps=args.stop_at,
                    max_seconds=None if args.max_minutes is None else 60 * args.max_minutes)
    except KeyboardInterrupt:
        print(f"\ninterrupted at step {trainer.step}; checkpoint saved in {out}", file=sys.stderr)
        return 130
    except OSError as err:  # a full or read-only disk: the last checkpoint written is whole
        print(f"tdlib train: cannot write {err.filename or out}: {err.strerror or err}; "
              "--resume continues from the last checkpoint", file=sys.stderr)
        return 2
    if trainer.rank == 0:
        print(f"trained {trainer.step} steps -> {out}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
