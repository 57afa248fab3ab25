"""Collect a policy's own states (tdlib.own_states) for DAgger training.

    python tools/own_states.py results/checkpoints/csg2d_policy --starts 8000 --steps 4 \\
        -o results/training/csg2d_own_states/states.jsonl

``--ar results/checkpoints/csg2d_ar --ar-share 0.5`` starts half of the roll-outs where a search
starts, at the autoregressive model's greedy program for the target.  Then train with
``--set examples.own_states=<file> --set examples.own_states_share=0.3``.
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
    parser.add_argument("--seed", type=int, default=0, help="seed of targets, starts and edits")
    parser.add_argument("--ar", help="autoregressive model checkpoint folder, for --ar-share")
    parser.add_argument("--ar-share", type=float, default=0.0,
                        help="share of roll-outs that start at the AR model's greedy program (0)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.ar_share <= 1.0:
        parser.error(f"--ar-share must be in [0, 1], not {args.ar_share}")
    if bool(args.ar_share) != bool(args.ar):
        parser.error("--ar and --ar-share go together (an AR checkpoint and the share it starts)")
    policy, record = load_model(args.policy, kind="policy")
    env = make_env(policy.config.env)
    examples = ExampleConfig(**{**record.get("examples", {}), "own_states": "",
                                "own_states_share": 0.0})
    decoder = Decoder(policy, Tokenizer(env.grammar, policy.config.max_positions))
    began = time.perf_counter()
    ar = None
    if args.ar:
        ar_model, _ = load_model(args.ar, kind="ar", env=env.name)
        ar = Decoder(ar_model, Tokenizer(env.grammar, ar_model.config.max_positions))
    pairs = collect(decoder, ExampleMaker(env, examples), args.starts, args.steps, args.seed,
                    ar=ar, ar_share=args.ar_share, progress=True)
    seconds = time.perf_counter() - began
    write(args.output, pairs, {"env": env.name, "policy": args.policy,
                               "policy_step": read_record(args.policy).get("step"),
                               "starts": args.starts, "steps": args.steps, "seed": args.seed,
                               "ar": args.ar or "", "ar_share": args.ar_share,
                               "seconds": round(seconds, 1),
                               "command": "python " + " ".join(sys.argv)})
    print(f"{len(pairs)} states from {args.starts} roll-outs of {args.steps} edits in "
          f"{seconds:.0f} s -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
