"""Latency tables of the bit-width search against the cycle-accurate simulator.

    python bench/latency_table.py [--model resnet20] [--configs sim-4x4-k16,ulx3s-85f,pynq-z2] [--policies 10]

For each configuration: builds (or reads from the cache) the table of every layer's simulated
cycles at every (w, a) in 2..8 x 2..8, then simulates random per-layer policies and prints the
table's predicted cycles against the simulated ones (relative error per policy, mean and
largest), and the wall time of each step.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bitmill.config import AccelConfig
from bitmill.sim import latency


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet20", choices=["resnet8", "resnet20"])
    p.add_argument("--configs", default="sim-4x4-k16,ulx3s-85f,pynq-z2")
    p.add_argument("--policies", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    pairs = tuple((w, a) for w in range(2, 9) for a in range(2, 9))
    for name in args.configs.split(","):
        cfg = AccelConfig.resolve(name)
        t0 = time.perf_counter()
        table = latency.build_table(args.model, cfg, pairs)
        t_table = time.perf_counter() - t0
        t0 = time.perf_counter()
        v = latency.validate(table, cfg, args.policies, seed=args.seed)
        t_val = time.perf_counter() - t0
        err = v.errors
        print(f"{args.model} on {cfg.name}: table of {len(table.searched)} layers x {len(pairs)} pairs "
              f"in {t_table:.1f} s (cache {table.key}); uniform W8A8 {table.measured[(8, 8)]:,}, "
              f"W4A4 {table.measured[(4, 4)]:,}, W2A2 {table.measured[(2, 2)]:,} cycles")
        for pr, sm, e in zip(v.predicted, v.simulated, err):
            print(f"  predicted {pr:>11,d}  simulated {sm:>11,d}  error {100 * e:+.3f}%")
        print(f"  {len(err)} random policies: mean |error| {100 * np.abs(err).mean():.3f}%, largest "
              f"{100 * np.abs(err).max():.3f}% ({t_val:.1f} s to simulate them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
