"""Verilator C++ harness benchmark: simulation speed of a whole tile engine, checked.

    python bench/verilator_harness.py [--config configs/accel/sim-16x16-k32.yaml]
                                      [--tiles 256] [--threads 1 2] [--seed 1]

Builds the configured engine (default 16x16 bit-serial PEs, 32 lanes) with
``verilator --cc --exe --build -O3`` around a small C++ main (`bitmill.sim.cosim.harness`),
runs random tiles over every precision and encoding (K_total up to the engine's largest), and
checks every result against the golden GEMM and every tile's cycles against the formula
(exact equality). Prints cycles/s over all cycles (loads, tiles, read-back) and over the tile
cycles alone, per thread count. Exit status 1 on any mismatch.

A ``--threads 2`` model synchronises its threads twice per cycle and needs two otherwise idle
cores: on a machine whose cores are shared with other work it runs far slower than one thread.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bitmill.config import AccelConfig
from bitmill.hw.engine import TileEngine
from bitmill.sim.cosim import harness

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=REPO / "configs/accel/sim-16x16-k32.yaml")
    p.add_argument("--tiles", type=int, default=256)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--build-dir", default=REPO / "build/harness")
    args = p.parse_args(argv)
    cfg = AccelConfig.load(args.config)
    engine = TileEngine.from_config(cfg)
    engine._MustUse__silence = True                     # only its geometry is used here
    tiles = harness.harness_tiles(engine, args.tiles, args.seed, max_chunks=engine.max_chunks)
    build_dir = Path(args.build_dir) / cfg.name
    print(f"{cfg.name}: {cfg.rows}x{cfg.cols} {cfg.pe_family} PEs, {cfg.lanes} lanes; "
          f"{len(tiles)} random tiles (every precision/encoding, K_total <= "
          f"{engine.max_k_total}); load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs")
    print("| threads | build s | cycles | cycles/s | tile cycles | tile cycles/s | mismatches |")
    print("|---|---|---|---|---|---|---|")
    bad = 0
    for threads in args.threads:
        exe, manifest, build_s = harness.build(cfg, build_dir, threads=threads)
        run = harness.run(exe, manifest, tiles, exe.parent)
        bad += run.value_mismatches + run.cycle_mismatches
        print(f"| {threads} | {build_s:.1f} | {run.cycles:,} | {run.cycles_per_s:,.0f} | "
              f"{run.tile_cycles:,} | {run.compute_cycles_per_s:,.0f} | "
              f"{run.value_mismatches} values, {run.cycle_mismatches} cycle counts |", flush=True)
        for failure in run.failures:
            print(f"  {failure}")
    print("results: " + ("all tiles equal the golden GEMM and the cycle formula" if not bad
                         else f"{bad} MISMATCHES"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
