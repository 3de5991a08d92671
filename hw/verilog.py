"""Verilog emission of the tile engine of an accelerator configuration, with a JSON ports
manifest: every port (direction, width), the bit fields of the stream payloads, the engine's
geometry and the tile cycle formula."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amaranth import Shape
from amaranth.back import verilog
from amaranth.lib import data, wiring

from bitmill.config import AccelConfig
from bitmill.fileio import atomic_write_text
from bitmill.hw import regmap
from bitmill.hw.accel import Accelerator
from bitmill.hw.engine import TileEngine
from bitmill.hw.sequencer import chunk_slots


@dataclass(frozen=True)
class Emitted:
    """Paths written by `emit`."""
    verilog: Path
    manifest: Path
    top: str


def top_name(cfg: AccelConfig) -> str:
    """Verilog module name of a configuration's engine."""
    return "bitmill_" + "".join(ch if ch.isalnum() else "_" for ch in cfg.name)


def _fields(shape) -> dict[str, dict[str, int]] | None:
    if not isinstance(shape, data.StructLayout):
        return None
    return {name: {"offset": f.offset, "width": Shape.cast(f.shape).width}
            for name, f in shape}


def ports(engine: TileEngine) -> list[dict]:
    """Ports of the emitted module, in the names the Verilog back-end gives them."""
    out = [{"name": "clk", "direction": "input", "width": 1},
           {"name": "rst", "direction": "input", "width": 1}]
    for path, member in engine.signature.members.flatten():
        if not member.is_port:
            continue
        port = {"name": "__".join(str(p) for p in path),
                "direction": "input" if member.flow == wiring.In else "output",
                "width": Shape.cast(member.shape).width}
        fields = _fields(member.shape)
        if fields:
            port["fields"] = fields
        out.append(port)
    return out


def manifest(cfg: AccelConfig, engine: TileEngine) -> dict:
    """The ports manifest of ``engine`` built for ``cfg``."""
    return {
        "top": top_name(cfg), "config": cfg.to_dict(), "cells": engine.cells,
        "engine": {"rows": engine.rows, "cols": engine.cols, "lanes": engine.lanes,
                   "family": engine.family, "max_chunks": engine.max_chunks,
                   "max_k_total": engine.max_k_total, "chunk_slots": chunk_slots(engine.max_chunks),
                   "buffer_depth": engine.depth, "lane_bits": engine.lane_bits,
                   "acc_width": engine.acc_width, "latency": engine.latency,
                   "res_latency": engine.res_latency},
        "tile_cycles": "ceil(k_total/lanes) * (w_bits*a_bits if bitserial else 1) + latency "
                       "(bitmill.timing.tile_cycles)",
        "ports": ports(engine),
    }


def emit(cfg: AccelConfig, outdir: str | Path, cells: str | None = None) -> Emitted:
    """Write ``<top>.v`` and ``<top>.ports.json`` into ``outdir``; return their paths.
    ``cells="xc7"``: bit-serial popcounts as 7-series primitives (`bitmill.hw.bitheap`),
    for Xilinx tools; None: plain logic for any tool."""
    if cells not in (None, "xc7"):
        raise ValueError(f"cells must be None or 'xc7', not {cells!r}")
    outdir = Path(outdir)
    engine = TileEngine.from_config(cfg, cells)
    top = top_name(cfg)
    text = verilog.convert(engine, name=top, emit_src=False)
    vpath, mpath = outdir / f"{top}.v", outdir / f"{top}.ports.json"
    atomic_write_text(vpath, text)
    atomic_write_text(mpath, json.dumps(manifest(cfg, engine), indent=2) + "\n")
    return Emitted(vpath, mpath, top)


@dataclass(frozen=True)
class EmittedAccelerator:
    """Files of the whole accelerator: Verilog, the register map as JSON and as a C header."""
    verilog: Path
    regmap: Path
    header: Path
    top: str


def emit_accelerator(cfg: AccelConfig, outdir: str | Path) -> EmittedAccelerator:
    """Write the whole accelerator (`bitmill.hw.accel.Accelerator`) as ``<name>_accel.v`` and
    its register map next to it (``.regmap.json``, ``_regs.h``)."""
    outdir = Path(outdir)
    top = f"{top_name(cfg)}_accel"
    paths = (outdir / f"{top}.v", outdir / f"{top}.regmap.json", outdir / f"{top}_regs.h")
    atomic_write_text(paths[0], verilog.convert(Accelerator(cfg), name=top, emit_src=False))
    atomic_write_text(paths[1], regmap.to_json(cfg))
    atomic_write_text(paths[2], regmap.c_header(cfg))
    return EmittedAccelerator(*paths, top)


def engine_from_manifest(doc: dict) -> TileEngine:
    """Rebuild the (unelaborated) engine a manifest describes, for host-side packing."""
    e = doc["engine"]
    engine = TileEngine(e["rows"], e["cols"], e["lanes"], e["family"], e["max_chunks"])
    engine._MustUse__silence = True          # a description of the emitted module, never built
    return engine
