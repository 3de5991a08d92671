"""``bitmill compile`` and ``bitmill simulate``: the compiler and the cycle-accurate simulator."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from bitmill.cli.args import add_config_arg, add_net_args, load_net
from bitmill.compiler.pipeline import compile_net
from bitmill.compiler.report import listing, schedule_markdown
from bitmill.config import AccelConfig
from bitmill.fileio import atomic_write_bytes, atomic_write_text
from bitmill.sim.report import random_image, sim_summary, sim_table
from bitmill.sim.verify import simulate_net


def _net_and_config(args: argparse.Namespace):
    graph = load_net(args)
    cfg = AccelConfig.resolve(args.config)
    return graph, cfg, random_image(graph, args.seed)


def cmd_compile(args: argparse.Namespace) -> int:
    graph, cfg, x = _net_and_config(args)
    compiled = compile_net(graph, cfg, x)
    out = Path(args.output)
    p = compiled.program
    atomic_write_bytes(out / "program.bin", p.encoded())
    atomic_write_text(out / "program.lst", listing(p))
    atomic_write_bytes(out / "memory.bin", p.memory)
    atomic_write_text(out / "symbols.json", json.dumps(p.symbols, indent=0))
    atomic_write_text(out / "segments.json", json.dumps(p.segments, indent=0))
    atomic_write_text(out / "schedule.json", json.dumps([asdict(l) for l in compiled.schedule.layers], indent=1))
    atomic_write_text(out / "schedule.md", schedule_markdown(compiled))
    cfg.dump(out / "config.yaml")
    print(f"compiled {graph.name} for {cfg.name}: {len(p.instructions)} instructions, "
          f"{len(p.memory):,} bytes of memory image, estimated "
          f"{sum(l.est_cycles for l in compiled.schedule.layers):,} cycles; wrote {out}/")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    graph, cfg, x = _net_and_config(args)
    t0 = time.perf_counter()
    compiled, stats = simulate_net(graph, cfg, x, progress=True)
    wall = time.perf_counter() - t0
    print(sim_table(stats))
    print(sim_summary(graph, stats, wall))
    if args.stats:
        atomic_write_text(Path(args.stats), json.dumps(stats.to_dict(), indent=1))
        print(f"statistics written to {args.stats}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``compile`` and ``simulate``."""
    for name, func, help_ in (("compile", cmd_compile, "lower a network to a program for an accelerator"),
                              ("simulate", cmd_simulate, "compile and run cycle-accurately, check vs golden")):
        p = sub.add_parser(name, help=help_)
        add_net_args(p)
        add_config_arg(p)
        if name == "compile":
            p.add_argument("-o", "--output", required=True, help="output directory")
        else:
            p.add_argument("--stats", help="write SimStats JSON here")
        p.set_defaults(func=func)
