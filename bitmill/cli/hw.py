"""``bitmill hw emit`` and ``bitmill hw synth``: Verilog and synthesis reports of a configuration."""

from __future__ import annotations

import argparse
from pathlib import Path

from bitmill.cli.args import Parser, add_config_arg
from bitmill.config import AccelConfig
from bitmill.hw.synth import (ROUTERS, check_output_dir, clock_verdict, elapsed_lines, seed_spread,
                              synthesize, write_report)
from bitmill.errors import ConfigError
from bitmill.hw.verilog import emit, emit_accelerator


def cmd_emit(args: argparse.Namespace) -> int:
    cfg = AccelConfig.resolve(args.config)
    if args.block == "accel":
        if args.cells:
            raise ConfigError("--cells applies to --block engine (the tile engine's popcounts), "
                              "not to --block accel")
        acc = emit_accelerator(cfg, args.output)
        print(f"wrote {acc.verilog} (module {acc.top}), its register map {acc.regmap} and {acc.header}")
        return 0
    out = emit(cfg, args.output, args.cells)
    print(f"wrote {out.verilog} (module {out.top}) and {out.manifest}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    cfg = AccelConfig.resolve(args.config)
    check_output_dir(args.reports, "--reports")
    check_output_dir(args.build_dir, "--build-dir")
    stem = (f"{cfg.name}-{args.target}-{args.block}" + ("-nodsp" if args.no_dsp else "")
            + ("-plain" if args.plain else ""))
    report = synthesize(cfg, args.target, Path(args.build_dir) / stem, pnr=args.pnr,
                        block=args.block, dsp=not args.no_dsp, plain=args.plain,
                        seeds=tuple(args.seeds), progress=elapsed_lines(_say), router=args.router)
    jpath, mpath = write_report(report, args.reports)
    pct = report.utilisation_pct or {}
    res = ", ".join(f"{k} {v}" + (f" ({pct[k]:.2f} %)" if k in pct else "")
                    for k, v in report.resources.items())
    fmax = (f"; Fmax {report.fmax_mhz:g} MHz{seed_spread(report)}, "
            f"{clock_verdict(report.fmax_mhz, cfg.clock_mhz)}"
            if report.fmax_mhz is not None else "")
    print(f"{cfg.name} on {args.target} (% of {report.device}): {res}{fmax}\n"
          f"wrote {jpath} and {mpath}")
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def _add_synth(hsub: argparse._SubParsersAction) -> None:
    s = hsub.add_parser("synth", help="yosys resource counts (and nextpnr Fmax with --pnr)")
    add_config_arg(s)
    s.add_argument("--target", required=True, choices=("ecp5", "ice40", "xc7"),
                   help="FPGA family: yosys synth_ecp5, synth_ice40 or synth_xilinx")
    s.add_argument("--pnr", action="store_true",
                   help="place and route (ecp5, ice40; blocks top and accel): Fmax")
    s.add_argument("--block", choices=("top", "array", "pe", "accel"), default="top",
                   help="the engine behind a 16-bit bus (top), the bare MAC array, one PE, or "
                        "the whole accelerator behind shift chains (accel)")
    s.add_argument("--no-dsp", action="store_true",
                   help="no DSP blocks: multipliers in LUTs (ecp5, xc7)")
    s.add_argument("--seeds", type=int, nargs="+", default=[1], metavar="N",
                   help="placement seeds for --pnr (run in parallel); Fmax is the lowest")
    s.add_argument("--router", choices=ROUTERS, default="router1",
                   help="nextpnr's router for --pnr: router2 routes several times faster, at some Fmax")
    s.add_argument("--plain", action="store_true",
                   help="xc7: bit-serial popcounts as plain logic for yosys' LUT mapper "
                        "instead of hand-mapped LUT6_2/CARRY4 cells")
    s.add_argument("--build-dir", default="build/synth", help="tool working directories")
    s.add_argument("--reports", default="build/reports/hw",
                   help="where the .json/.md reports go (the tracked reports: --reports reports/hw)")
    s.set_defaults(func=cmd_synth)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``hw emit`` and ``hw synth``."""
    p = sub.add_parser("hw", help="RTL of an accelerator configuration")
    hsub = p.add_subparsers(dest="hw_command", required=True, parser_class=Parser)
    e = hsub.add_parser("emit", help="write Verilog and a JSON ports manifest")
    add_config_arg(e)
    e.add_argument("-o", "--output", required=True, help="directory to write")
    e.add_argument("--block", choices=("engine", "accel"), default="engine",
                   help="engine: the tile engine and its ports manifest; accel: the whole "
                        "accelerator (AXI4 memory port, AXI4-Lite host registers) with its "
                        "register map as JSON and as a C header")
    e.add_argument("--cells", choices=("xc7",), default=None,
                   help="bit-serial popcounts as Xilinx 7-series LUT6_2/CARRY4 primitives")
    e.set_defaults(func=cmd_emit)
    _add_synth(hsub)
