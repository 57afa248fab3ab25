"""GPU capacity, apart from the CPU that makes the examples: training steps on one fixed batch.

    python benchmarks/gpu.py --preset paper --batch-size 256 --steps 40

The trainer's examples/s on a GPU machine is the smaller of what its CPU workers make and what
the card can train; this measures the second alone (the same batch, moved once, trained on
``--steps`` times under bf16 autocast after warm-up steps), so that the two can be compared.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from tdlib.model import build_model
from tdlib.presets import preset
from tdlib.tasks import make_task
from tdlib.trainer import pick_device


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--env", default="csg2d")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    device = pick_device().type
    model_config, _, examples = preset(args.preset, "policy", args.env)
    task = make_task("policy", args.env, model_config, examples, seed=0)
    batch = task.collate([task.example(i) for i in range(args.batch_size)])
    batch = {k: v.to(device) for k, v in batch.items()}
    torch.manual_seed(0)
    model = build_model(model_config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")

    def step():
        with autocast:
            loss, _ = task.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(json.dumps({"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                      "preset": args.preset, "batch_size": args.batch_size,
                      "steps_per_s": round(args.steps / seconds, 2),
                      "examples_per_s": round(args.steps * args.batch_size / seconds, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
