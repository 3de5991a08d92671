"""``bitmill rtlsim``: a program on the Verilated RTL of the whole accelerator, checked bit for
bit against the golden model and cycle for cycle against the simulator."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bitmill.cli.args import positive_int
from bitmill.cli.compile import add_program_args, compiled_for
from bitmill.program_file import program_image
from bitmill.sim.check import check_against_golden
from bitmill.sim.cosim import rtlsim
from bitmill.sim.report import sim_table
from bitmill.sim.verify import simulate_compiled


def cmd_rtlsim(args: argparse.Namespace) -> int:
    graph, compiled, x = compiled_for(args)
    program = compiled.program
    _, stats = simulate_compiled(graph, compiled, x)
    image, _ = program_image(program)
    depth = max(rtlsim.MIN_MEMORY_BYTES, 1 << (len(image) - 1).bit_length())   # builds reused
    print(f"building the Verilated accelerator {program.config.name} in {args.build_dir} "
          f"(reused when unchanged)", flush=True)
    exe, build_s = rtlsim.build(program.config, depth, args.build_dir)
    workdir = Path(args.build_dir) / "run"
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = rtlsim.run(exe, program, workdir, args.max_cycles)
    wall = time.perf_counter() - t0
    rtlsim.check_run(program, result)
    check_against_golden(graph, program, result.image, x)
    print(sim_table(stats))
    print(f"rtl: bit-exact (every tensor of the final memory image equals golden, "
          f"{len(graph.nodes)} tensors) and cycle-equal (all {len(program.instructions)} "
          f"instructions start and end in the simulator's cycle); {result.cycles:,} cycles, "
          f"{result.cycles_per_s:,.0f} cycles/s, {wall:.1f} s wall (build {build_s:.0f} s)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``rtlsim``."""
    p = sub.add_parser("rtlsim", help="run a program on the Verilated RTL and check it",
                       description="Run a compiled folder, or NET or --model compiled for "
                                   "--config, on the Verilated RTL of the whole accelerator "
                                   "(AXI4 memory model with the config's latency and width); "
                                   "check every tensor against golden and every instruction's "
                                   "start and end cycle against the simulator.")
    add_program_args(p)
    p.add_argument("--build-dir", default="build/rtlsim", help="where the model is built and run")
    p.add_argument("--max-cycles", type=positive_int, default=1 << 40,
                   help="stop the RTL after this many cycles")
    p.set_defaults(func=cmd_rtlsim)
