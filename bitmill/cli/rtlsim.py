"""``bitmill rtlsim``: a program on the Verilated RTL of the whole accelerator, checked bit for
bit against the golden model and cycle for cycle against the simulator."""

from __future__ import annotations

import argparse
import sys
import time

from tqdm import tqdm

from bitmill.cli.args import positive_int
from bitmill.cli.compile import add_program_args, compiled_for
from bitmill.sim.cosim import rtlsim
from bitmill.sim.report import sim_table
from bitmill.sim.verify import simulate_compiled


def cmd_rtlsim(args: argparse.Namespace) -> int:
    graph, compiled, x = compiled_for(args)
    program = compiled.program
    _, stats = simulate_compiled(graph, compiled, x)
    t0 = time.perf_counter()
    with tqdm(total=min(stats.cycles, args.max_cycles), desc="rtlsim", unit="cycle", unit_scale=True,
              disable=not sys.stderr.isatty(), leave=False) as bar:
        result, build_s = rtlsim.run_checked(
            graph, program, x, args.build_dir, args.max_cycles,
            on_build=lambda name: print(f"building the Verilated accelerator {name} in "
                                        f"{args.build_dir} (reused when unchanged)", flush=True),
            on_cycles=lambda n: bar.update(n - bar.n))
    wall = time.perf_counter() - t0 - build_s
    print(sim_table(stats))
    print(f"rtl: bit-exact (every tensor of the final memory image equals golden, "
          f"{len(graph.nodes)} tensors) and cycle-equal (all {len(program.instructions)} "
          f"instructions{program.describe_fills()} start and end in the simulator's cycle); {result.cycles:,} cycles, "
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
