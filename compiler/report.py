"""Reports of a compiled network: the per-layer schedule (Markdown) and the program listing."""

from __future__ import annotations

import dataclasses
import enum

from bitmill import timing
from bitmill.isa import QUEUE_OF
from bitmill.numerics import Encoding
from bitmill.compiler.cost import RELATION


def schedule_markdown(compiled) -> str:
    """Per-layer schedule report: tiles, loop order, buffer use, bytes, estimated cycles."""
    cfg = compiled.schedule.config
    lines = [f"# Schedule of {compiled.schedule.graph.name} on {cfg.name}", "",
             f"{cfg.rows}x{cfg.cols} {cfg.pe_family} array, {cfg.lanes} lanes, buffers W/A/O "
             f"{cfg.weight_buffer_bytes // 1024}/{cfg.act_buffer_bytes // 1024}/"
             f"{cfg.out_buffer_bytes // 1024} KiB (double-buffered), {cfg.mem_bytes_per_cycle} B/cycle.", "",
             "| layer | op | bits | bands x rows | channel tiles x channels | array tiles | W/A/O slot bytes | "
             "bytes moved | est. cycles | est. utilisation |", "|---|---|---|---|---|---|---|---|---|---|"]
    for l in compiled.schedule.layers:
        if l.kind == "alias":
            continue
        bits = f"W{l.w_bits}A{l.a_bits}" if l.kind == "gemm" else "-"
        est = l.estimate.cycles
        util = (l.macs / (est * timing.peak_macs_per_cycle(cfg, l.w_bits, l.a_bits))
                if l.kind == "gemm" and est else 0)
        tiles = f"{l.channel_tiles} x {l.tile_rows}" if l.kind == "gemm" else "-"
        lines.append(f"| {l.name} | {l.op} | {bits} | {l.bands} x {l.band_rows} | {tiles} | "
                     f"{l.array_tiles} | {l.buffer_use.weight}/{l.buffer_use.act}/{l.buffer_use.out} | "
                     f"{l.traffic.total:,} | {est:,} | {100 * util:.1f}% |")
    resident = [l.name for l in compiled.schedule.layers if l.weights_resident]
    lines.append("\nloop order of every GEMM layer: band > channel tile > pixel tile; the weights of "
                 f"{', '.join(resident) or 'no layer'} stay resident in one weight slot (loaded once).")
    lines.append(f"\nestimated cycles of the network (sum of the layers): "
                 f"{sum(l.estimate.cycles for l in compiled.schedule.layers):,}. "
                 f"How the estimate relates to the cycle-accurate simulation: {RELATION}")
    return "\n".join(lines) + "\n"


def _field(value) -> str:
    if isinstance(value, Encoding):
        return value.label
    if isinstance(value, enum.Enum):
        return value.name.lower()
    return repr(value)


def instruction_text(ins) -> str:
    """``Gemm(w_slot=0, ...)`` with encodings and enums by name and the dependency flags that are set."""
    parts = [f"{f.name}={_field(getattr(ins, f.name))}" for f in dataclasses.fields(ins) if f.name != "deps"]
    flags = [f.name for f in dataclasses.fields(ins.deps) if getattr(ins.deps, f.name)]
    return f"{type(ins).__name__}({', '.join(parts + flags)})"


def listing(program) -> str:
    """One line per instruction: index, queue, instruction."""
    return "\n".join(f"{i:6d} {QUEUE_OF[ins.opcode]!s:8s} {instruction_text(ins)}"
                     for i, ins in enumerate(program.instructions)) + "\n"
