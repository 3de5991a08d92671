"""Hardware awareness of the bit-width search: searched policies on two configurations.

    python bench/search_cross.py --init runs/fp/checkpoint.pt [--configs sim-4x4-k16,ulx3s-85f,pynq-z2]
        [--methods ilp,sdq] [--budget-ratio 0.4] [--runs runs/search] [--sdq-epochs 4]

For each configuration and method: `bitmill search` (reused when its folder holds a finished
search of the same settings) for ``--budget-ratio`` of the configuration's uniform W8A8 cycles;
then every policy is compiled and simulated on every configuration (cycle-accurate simulator,
seeded weights: cycles do not depend on trained values). Prints the cross table of simulated
cycles, each policy's table prediction on its own target, the uniform W8A8/W4A4/W2A2 cycles,
and the wall time of each search step.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bitmill.config import AccelConfig
from bitmill.precision import parse_bits
from bitmill.sim import latency


def _policy(doc: dict) -> dict:
    return {l: parse_bits(p) for l, p in doc["policy"].items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init", required=True)
    p.add_argument("--configs", default="sim-4x4-k16,ulx3s-85f,pynq-z2")
    p.add_argument("--methods", default="ilp,sdq")
    p.add_argument("--budget-ratio", default="0.4,0.55",
                   help="fraction of each config's uniform W8A8 cycles (one per config, or one for all)")
    p.add_argument("--runs", default="runs/search")
    p.add_argument("--sdq-epochs", default="4")
    p.add_argument("--sdq-images", default="5000")
    args = p.parse_args(argv)
    cfgs = [AccelConfig.resolve(c) for c in args.configs.split(",")]
    ratios = args.budget_ratio.split(",")
    ratios = dict(zip([c.name for c in cfgs], ratios if len(ratios) == len(cfgs) else ratios[:1] * len(cfgs)))
    docs = {}
    for cfg in cfgs:
        for method in args.methods.split(","):
            out = Path(args.runs) / f"{method}-{cfg.name}-{ratios[cfg.name]}"
            cmd = [sys.executable, "-m", "bitmill", "search", "--model", "resnet20", "--method", method,
                   "--config", cfg.name, "--budget-ratio", ratios[cfg.name], "--init", args.init,
                   "-o", str(out), "--resume"]
            if method == "sdq":
                cmd += ["--epochs", args.sdq_epochs, "--train-images", args.sdq_images]
            if not (out / "search.json").exists():
                subprocess.run(cmd, check=True)
            docs[(method, cfg.name)] = json.loads((out / "search.json").read_text())
    tables = {c.name: latency.build_table("resnet20", c, tuple((w, a) for w in range(2, 9) for a in range(2, 9)))
              for c in cfgs}
    print("uniform policies (first/last 8-bit), simulated cycles:")
    for c in cfgs:
        m = tables[c.name].measured
        print(f"  {c.name:12s} W8A8 {m[(8, 8)]:>11,d}  W4A4 {m[(4, 4)]:>11,d}  W2A2 {m[(2, 2)]:>11,d}")
    print(f"searched policies (budget {ratios} x own W8A8), simulated cycles on each config:")
    print(f"  {'policy':24s} " + " ".join(f"{c.name:>14s}" for c in cfgs) + "   predicted on own   search wall time")
    for (method, own), doc in docs.items():
        pol = _policy(doc)
        sim = [latency.simulate_policy("resnet20", c, pol)[1].cycles for c in cfgs]
        secs = ", ".join(f"{k} {v:.0f} s" for k, v in doc["seconds"].items())
        print(f"  {method + ' for ' + own:24s} " + " ".join(f"{s:>14,d}" for s in sim)
              + f"   {doc['predicted_cycles']:>12,d}   {secs}")
        print(f"    bits: {' '.join(doc['policy'].values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
