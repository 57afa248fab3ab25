"""Short A/B runs of cpu-preset policy variants: train, then measure what they read from images.

    python tools/policy_ab.py runs/ab_base 3000
    python tools/policy_ab.py runs/ab_bidir 3000 bidirectional_prompt=True prefix_norm=True
    python tools/policy_ab.py runs/ab_tokens16 3000 prefix_tokens=16 encoder_stride=16
    python tools/policy_ab.py runs/s1_hour 56000 encoder="'nf_micro'" d_model=64 n_layers=2 \
        --eval-every 8000

Each ``key=value`` overrides a field of the cpu preset's ModelConfig (Python literals);
``examples.key=value`` one of its ExampleConfig (e.g. ``examples.max_noise_steps=1``).  The run
evaluates at the end, or every ``--eval-every`` steps (one greedy edit on 256 held-out 1- and
2-mutation problems, and a checkpoint), and prints
:func:`tdlib.evaluate.image_reliance` on 512 held-out examples.
"""

import argparse
import ast
from dataclasses import replace
from pathlib import Path

from tdlib.evaluate import image_reliance
from tdlib.presets import preset
from tdlib.tasks import make_task
from tdlib.train import Trainer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="checkpoint folder (must not exist)")
    parser.add_argument("steps", type=int)
    parser.add_argument("overrides", nargs="*",
                        help="ModelConfig field=value, or examples.field=value")
    parser.add_argument("--env", default="csg2d")
    parser.add_argument("--eval-every", type=int, default=None,
                        help="evaluate and checkpoint every N steps (default: once, at the end)")
    args = parser.parse_args()
    if Path(args.out).exists():
        parser.error(f"{args.out} exists; choose a new folder")
    model, train, examples = preset("cpu", "policy", args.env)
    fields = {k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in args.overrides)}
    model = replace(model, **{k: v for k, v in fields.items() if not k.startswith("examples.")})
    examples = replace(examples, **{k.split(".", 1)[1]: v for k, v in fields.items()
                                    if k.startswith("examples.")})
    every = args.eval_every or args.steps
    train = replace(train, steps=args.steps, eval_every=every, eval_problems=256,
                    checkpoint_every=every)
    task = make_task("policy", args.env, model, examples, train.seed)
    trainer = Trainer(task, train, args.out, progress=True,
                      command="python tools/policy_ab.py " + " ".join([args.out, str(args.steps)]
                                                                      + args.overrides))
    trainer.fit()
    print((trainer.out / "eval_log.csv").read_text())
    print(image_reliance(task, trainer.model, 512).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
