"""Command-line commands of the compiler side: ``compile`` and ``simulate``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bitmill.fileio import atomic_write_bytes, atomic_write_text


def _net_and_config(args):
    from bitmill.cli import load_net
    from bitmill.config import AccelConfig

    graph = load_net(args)
    cfg = AccelConfig.load(args.config)
    t = graph.input.out
    lo, hi = t.range
    x = np.random.default_rng(args.seed).integers(lo, hi + 1, size=t.shape)
    return graph, cfg, x


def schedule_markdown(compiled) -> str:
    """Per-layer schedule report: tiles, loop order, buffer use, bytes, estimated cycles."""
    cfg = compiled.schedule.config
    lines = [f"# Schedule of {compiled.schedule.graph.name} on {cfg.name}", "",
             f"{cfg.rows}x{cfg.cols} {cfg.pe_family} array, {cfg.lanes} lanes, buffers W/A/O "
             f"{cfg.weight_buffer_bytes // 1024}/{cfg.act_buffer_bytes // 1024}/"
             f"{cfg.out_buffer_bytes // 1024} KiB (double-buffered), {cfg.mem_bytes_per_cycle} B/cycle.", "",
             "| layer | op | bits | bands x rows | channel tiles | array tiles | W/A/O slot bytes | "
             "bytes moved | est. cycles | est. utilisation |", "|---|---|---|---|---|---|---|---|---|---|"]
    from bitmill import timing
    for l in compiled.schedule.layers:
        if l.kind == "alias":
            continue
        bits = f"W{l.w_bits}A{l.a_bits}" if l.kind == "gemm" else "-"
        util = (l.macs / (l.est_cycles * timing.peak_macs_per_cycle(cfg, l.w_bits, l.a_bits))
                if l.kind == "gemm" and l.est_cycles else 0)
        lines.append(f"| {l.name} | {l.op} | {bits} | {l.bands} x {l.band_rows} | {l.channel_tiles} | "
                     f"{l.array_tiles} | {l.weight_buffer_use}/{l.act_buffer_use}/{l.out_buffer_use} | "
                     f"{l.bytes_moved:,} | {l.est_cycles:,} | {100 * util:.1f}% |")
    resident = [l.name for l in compiled.schedule.layers if l.weights_resident]
    lines.append("\nloop order of every GEMM layer: band > channel tile > pixel tile; the weights of "
                 f"{', '.join(resident) or 'no layer'} stay resident in one weight slot (loaded once).")
    return "\n".join(lines) + "\n"


def listing(program) -> str:
    from bitmill.isa import QUEUE_OF

    return "\n".join(f"{i:6d} {QUEUE_OF[ins.opcode]:8s} {ins}" for i, ins in enumerate(program.instructions)) + "\n"


def cmd_compile(args: argparse.Namespace) -> int:
    from bitmill.compiler.pipeline import compile_net

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


def sim_table(stats) -> str:
    """Per-layer table: cycles (on the compute unit), MAC utilisation, busy share, the cycles the
    compute unit waited for loads and stores, and what most of the cycles went to."""
    head = (f"{'layer':22s} {'op':13s} {'cycles':>10s} {'ms':>8s} {'MAC util':>8s} {'busy':>6s} "
            f"{'wait load':>10s} {'wait store':>10s} {'bound':>8s}")
    rows = [head, "-" * len(head)]
    for l in stats.layers:
        util = f"{100 * l.mac_utilisation:.1f}%" if l.macs else "-"
        rows.append(f"{l.name:22s} {l.op:13s} {l.cycles:>10,d} {l.cycles / (stats.clock_mhz * 1e3):8.3f} "
                    f"{util:>8s} {100 * l.compute_busy:5.1f}% {l.wait_load:>10,d} {l.wait_store:>10,d} "
                    f"{l.bottleneck:>8s}")
    rows.append("-" * len(head))
    rows.append(f"{'total':22s} {'':13s} {stats.cycles:>10,d} {stats.milliseconds:8.3f}")
    return "\n".join(rows)


def cmd_simulate(args: argparse.Namespace) -> int:
    import time

    from bitmill.flow import simulate_net

    graph, cfg, x = _net_and_config(args)
    t0 = time.perf_counter()
    compiled, stats = simulate_net(graph, cfg, x, progress=True)
    wall = time.perf_counter() - t0
    print(sim_table(stats))
    print(f"bit-exact: every tensor of the final memory image equals the golden model "
          f"({len(graph.nodes)} tensors); {stats.cycles:,} cycles = {stats.milliseconds:.3f} ms at "
          f"{cfg.clock_mhz:g} MHz; simulated in {wall:.2f} s")
    if args.stats:
        atomic_write_text(Path(args.stats), json.dumps(stats.to_dict(), indent=1))
        print(f"statistics written to {args.stats}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``compile`` and ``simulate`` to the ``bitmill`` parser."""
    from bitmill.cli import _add_net_args

    for name, func, help_ in (("compile", cmd_compile, "lower a network to a program for an accelerator"),
                              ("simulate", cmd_simulate, "compile and run cycle-accurately, check vs golden")):
        p = sub.add_parser(name, help=help_)
        _add_net_args(p)
        p.add_argument("--config", required=True, help="accelerator YAML (configs/accel/*.yaml)")
        if name == "compile":
            p.add_argument("-o", "--output", required=True, help="output directory")
        else:
            p.add_argument("--stats", help="write SimStats JSON here")
        p.set_defaults(func=func)
