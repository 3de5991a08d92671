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
from bitmill.fileio import atomic_dir, atomic_write_text, check_new_dir
from bitmill.program_file import pack_program
from bitmill.sim.report import random_image, sim_summary, sim_table
from bitmill.sim.verify import simulate_net


def _net_and_config(args: argparse.Namespace):
    graph = load_net(args)
    cfg = AccelConfig.resolve(args.config)
    return graph, cfg, random_image(graph, args.seed)


def cmd_compile(args: argparse.Namespace) -> int:
    out = check_new_dir(Path(args.output), args.force)
    graph, cfg, x = _net_and_config(args)
    compiled = compile_net(graph, cfg, x)
    p = compiled.program
    with atomic_dir(out, args.force) as d:
        (d / "program.bin").write_bytes(pack_program(p))
        (d / "program.lst").write_text(listing(p))
        (d / "memory.bin").write_bytes(p.memory)
        (d / "symbols.json").write_text(json.dumps([r.to_dict() for r in p.symbols], indent=1))
        (d / "segments.json").write_text(json.dumps([s.to_dict() for s in p.segments], indent=1))
        (d / "schedule.json").write_text(json.dumps([asdict(l) for l in compiled.schedule.layers], indent=1))
        (d / "schedule.md").write_text(schedule_markdown(compiled))
        cfg.dump(d / "config.yaml")
    print(f"compiled {graph.name} for {cfg.name}: {len(p.instructions)} instructions, "
          f"{len(p.memory):,} bytes of memory image, estimated "
          f"{sum(l.estimate.cycles for l in compiled.schedule.layers):,} cycles; wrote {out}/")
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
            p.add_argument("-o", "--output", required=True, help="output directory (written whole)")
            p.add_argument("--force", action="store_true", help="replace an existing output directory")
        else:
            p.add_argument("--stats", help="write SimStats JSON here")
        p.set_defaults(func=func)
