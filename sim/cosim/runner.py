"""Build and run the cocotb bench (`bitmill.sim.cosim.tb_engine`) on an RTL simulator through
``cocotb_tools.runner``."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bitmill.config import AccelConfig
from bitmill.hw.emit import emit

SIMULATORS = ("icarus", "verilator")
TB_MODULE = "bitmill.sim.cosim.tb_engine"


@dataclass(frozen=True)
class CosimResult:
    """Counts from one bench run."""
    tiles: int
    value_mismatches: int
    cycle_mismatches: int
    tile_cycles: int
    failures: tuple[str, ...]
    build_s: float
    run_s: float


def simulator_missing(sim: str) -> str | None:
    """Why ``sim`` cannot run here, or None when it can."""
    if sim not in SIMULATORS:
        return f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}"
    exe = "iverilog" if sim == "icarus" else "verilator"
    if shutil.which(exe) is None:
        return f"{exe} is not on PATH"
    return None


def run_bench(cfg: AccelConfig, build_dir: str | Path, sim: str = "icarus", seed: int = 0,
              limit: int = 0) -> CosimResult:
    """Emit ``cfg``'s engine, build it for ``sim`` and run the tile suite."""
    from cocotb_tools.runner import get_runner

    build_dir = Path(build_dir).resolve()
    emitted = emit(cfg, build_dir / "rtl")
    runner = get_runner(sim)
    t0 = time.perf_counter()
    runner.build(sources=[emitted.verilog], hdl_toplevel=emitted.top, build_dir=build_dir / sim,
                 timescale=("1ns", "1ps"), always=True)
    t1 = time.perf_counter()
    summary = build_dir / f"summary-{sim}-{seed}.json"
    summary.unlink(missing_ok=True)
    env = {"BITMILL_MANIFEST": str(emitted.manifest), "BITMILL_SEED": str(seed),
           "BITMILL_LIMIT": str(limit), "BITMILL_SUMMARY": str(summary),
           "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH")]))}
    runner.test(test_module=TB_MODULE, hdl_toplevel=emitted.top, build_dir=build_dir / sim,
                extra_env=env, timescale=("1ns", "1ps"))
    t2 = time.perf_counter()
    if not summary.exists():
        raise RuntimeError(f"the bench wrote no summary ({summary}); see the simulator log")
    doc = json.loads(summary.read_text())
    return CosimResult(doc["tiles"], doc["value_mismatches"], doc["cycle_mismatches"],
                       doc["tile_cycles"], tuple(doc["failures"]), t1 - t0, t2 - t1)
