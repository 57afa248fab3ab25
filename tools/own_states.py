"""Collect a policy's own states (tdlib.own_states) for DAgger training.

    python tools/own_states.py results/checkpoints/csg2d_policy --starts 8000 --steps 4 \\
        -o results/training/csg2d_own_states/states.jsonl

Then train with ``--set examples.own_states=<file> --set examples.own_states_share=0.3``.
"""

import argparse
import sys
import time

from tdlib.checkpoint import load_model, read_record
from tdlib.decode import Decoder
from tdlib.env import make_env
from tdlib.examples import ExampleConfig, ExampleMaker
from tdlib.own_states import collect, write
from tdlib.tokens import Tokenizer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("policy", help="policy checkpoint folder")
    parser.add_argument("-o", "--output", required=True, help="the states file to write")
    parser.add_argument("--starts", type=int, default=8000, help="roll-outs (8,000)")
    parser.add_argument("--steps", type=int, default=4, help="sampled edits per roll-out (4)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    policy, record = load_model(args.policy, kind="policy")
    env = make_env(policy.config.env)
    examples = ExampleConfig(**{**record.get("examples", {}), "own_states": "",
                                "own_states_share": 0.0})
    decoder = Decoder(policy, Tokenizer(env.grammar, policy.config.max_positions))
    began = time.perf_counter()
    pairs = collect(decoder, ExampleMaker(env, examples), args.starts, args.steps, args.seed)
    seconds = time.perf_counter() - began
    write(args.output, pairs, {"env": env.name, "policy": args.policy,
                               "policy_step": read_record(args.policy).get("step"),
                               "starts": args.starts, "steps": args.steps, "seed": args.seed,
                               "seconds": round(seconds, 1),
                               "command": "python " + " ".join(sys.argv)})
    print(f"{len(pairs)} states from {args.starts} roll-outs of {args.steps} edits in "
          f"{seconds:.0f} s -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
