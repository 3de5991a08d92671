"""cocotb bench of the host register port (`bitmill.hw.host_regs.HostRegisters`) driven by
cocotbext-axi's `AxiLiteMaster`: every register read, RW registers written (whole words and
single bytes) and read back, SLVERR answers, the START/CLEAR pulses. Expected values come from
the register map's JSON document (`bitmill.hw.regmap.to_json`). `run_bench` emits the Verilog,
builds it and runs the bench through ``cocotb_tools.runner``; environment of the bench:

* ``BITMILL_REGMAP``: the register map JSON of the emitted configuration
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer

from bitmill.config import AccelConfig
from bitmill.fileio import atomic_write_text
from bitmill.hw.regmap import ID_VALUE, registers_from_json, to_json
from bitmill.sim.cosim.runner import build_and_test

TOP = "bitmill_host_regs"
TB_MODULE = "bitmill.sim.cosim.tb_host_regs"
OKAY, SLVERR = 0, 2
ADDR_SPACE = 0x100
INPUTS = {"busy": 0, "done": 1, "error_flags": 0b1001_0010, "error_instr": 0x0000_0BAD,
          "cycles": 0x0123_4567_89AB_CDEF, "load_busy": 0x1111_0001,
          "compute_busy": 0x2222_0002, "store_busy": 0x3333_0003, "retired": 0x4444_0004}


@dataclass(frozen=True)
class BenchResult:
    """Names of the bench's tests that ran and of those that failed (with their message)."""
    tests: tuple[str, ...]
    failures: tuple[str, ...]


# ---- the bench (runs inside the simulator) ---------------------------------------------------

class Bench:
    """Clock, reset, the AXI4-Lite master and a monitor of the ``start``/``clear`` pulses.
    Made by `start`: the master is attached after reset, because its channel monitors sample
    the handshake signals from the first clock edge on and fail on X (Icarus nets at time 0)."""

    def __init__(self, dut):
        self.dut = dut
        with open(os.environ["BITMILL_REGMAP"]) as fh:
            self.doc = json.load(fh)
        self.registers = registers_from_json(json.dumps(self.doc))
        self.master = None
        self.pulses: list[tuple[str, int]] = []

    @classmethod
    async def start(cls, dut, inputs=None) -> "Bench":
        from cocotbext.axi import AxiLiteBus, AxiLiteMaster
        bench = cls(dut)
        for name, value in (inputs or {}).items():
            getattr(dut, name).value = value
        dut.rst.value = 1
        await Timer(1, unit="ns")
        Clock(dut.clk, 10, unit="ns", impl="gpi").start()
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        bench.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "host_"), dut.clk, dut.rst)
        cocotb.start_soon(bench._monitor())
        return bench

    async def _monitor(self) -> None:
        cycle = 0
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            cycle += 1
            for name in ("start", "clear"):
                if int(getattr(self.dut, name).value):
                    self.pulses.append((name, cycle))

    async def read(self, addr: int) -> tuple[int, int]:
        resp = await self.master.read(addr, 4)
        return int.from_bytes(resp.data, "little"), int(resp.resp)

    async def write(self, addr: int, data: bytes) -> int:
        return int((await self.master.write(addr, data)).resp)

    def offset(self, name: str) -> int:
        return next(r.offset for r in self.registers if r.name == name)

    def expected(self, rw: dict[str, int]) -> dict[str, int]:
        i = INPUTS
        return {"ID": ID_VALUE, "SHAPE": self.doc["shape"],
                "STATUS": i["busy"] | i["done"] << 1 | int(i["error_flags"] != 0) << 2,
                "ERROR": i["error_flags"], "ERROR_INSTR": i["error_instr"],
                "CYCLES_LO": i["cycles"] & 0xFFFF_FFFF, "CYCLES_HI": i["cycles"] >> 32,
                "LOAD_BUSY": i["load_busy"], "COMPUTE_BUSY": i["compute_busy"],
                "STORE_BUSY": i["store_busy"], "RETIRED": i["retired"], **rw}

    async def check_reads(self, rw: dict[str, int]) -> None:
        want = self.expected(rw)
        for reg in self.registers:
            if reg.access.value != "WO":
                got = await self.read(reg.offset)
                assert got == (want[reg.name], OKAY), (reg.name, hex(got[0]), got[1])


@cocotb.test()
async def smoke_read_id(dut):
    """One register through cocotbext-axi."""
    bench = await Bench.start(dut)
    assert await bench.read(0) == (ID_VALUE, OKAY)


@cocotb.test()
async def every_register(dut):
    """Reads of every register; RW words and single bytes; SLVERR on RO/WO/unmapped."""
    bench = await Bench.start(dut, INPUTS)
    rw = {r.name: 0 for r in bench.registers if r.access.value == "RW"}
    await bench.check_reads(rw)
    for k, name in enumerate(rw):
        rw[name] = 0xA5A5_0000 + k
        assert await bench.write(bench.offset(name), rw[name].to_bytes(4, "little")) == OKAY
    await bench.check_reads(rw)
    for k, name in enumerate(rw):           # one byte: the master sends a single strobe bit
        assert await bench.write(bench.offset(name) + 1 + k % 3, bytes([0x3C])) == OKAY
        shift = 8 * (1 + k % 3)
        rw[name] = rw[name] & ~(0xFF << shift) | 0x3C << shift
    await bench.check_reads(rw)
    mapped = {r.offset: r for r in bench.registers}
    for addr in range(0, ADDR_SPACE, 4):
        reg = mapped.get(addr)
        if reg is None or reg.access.value == "RO":
            assert await bench.write(addr, b"\xff" * 4) == SLVERR, hex(addr)
        if reg is None or reg.access.value == "WO":
            assert await bench.read(addr) == (0, SLVERR), hex(addr)
    await bench.check_reads(rw)
    assert bench.pulses == []


@cocotb.test()
async def ctrl_pulses(dut):
    """START pulses once when not busy and never while busy; CLEAR pulses once."""
    bench = await Bench.start(dut, {"busy": 0})
    ctrl = bench.offset("CTRL")
    assert await bench.write(ctrl, (1).to_bytes(4, "little")) == OKAY
    await ClockCycles(dut.clk, 2)
    assert [p[0] for p in bench.pulses] == ["start"], bench.pulses
    dut.busy.value = 1
    assert await bench.write(ctrl, (1).to_bytes(4, "little")) == OKAY
    assert await bench.write(ctrl, (2).to_bytes(4, "little")) == OKAY
    await ClockCycles(dut.clk, 2)
    assert [p[0] for p in bench.pulses] == ["start", "clear"], bench.pulses


# ---- building and running it ----------------------------------------------------------------

def emit_host_regs(cfg: AccelConfig, outdir: Path) -> tuple[Path, Path]:
    """Write the Verilog of ``cfg``'s host register port and its register map JSON."""
    from amaranth.back import verilog
    from bitmill.hw.host_regs import HostRegisters
    outdir.mkdir(parents=True, exist_ok=True)
    rtl, doc = outdir / f"{TOP}.v", outdir / f"{TOP}.regmap.json"
    atomic_write_text(rtl, verilog.convert(HostRegisters(cfg), name=TOP))
    atomic_write_text(doc, to_json(cfg))
    return rtl, doc


def _results(xml: Path) -> BenchResult:
    tests, failures = [], []
    for case in ElementTree.parse(xml).getroot().iter("testcase"):
        tests.append(case.get("name"))
        for bad in list(case.iter("failure")) + list(case.iter("error")):
            failures.append(f"{case.get('name')}: {bad.get('message', '')}")
    return BenchResult(tuple(tests), tuple(failures))


def run_bench(cfg: AccelConfig, build_dir: str | Path, sim: str = "icarus") -> BenchResult:
    """Emit, build (in ``build_dir / sim``) and run the bench on ``sim``."""
    build_dir = Path(build_dir).resolve()
    rtl, doc = emit_host_regs(cfg, build_dir / "rtl")
    xml = build_dir / f"results-{sim}.xml"
    xml.unlink(missing_ok=True)
    build_and_test(sim, [rtl], TOP, build_dir / sim, TB_MODULE, {"BITMILL_REGMAP": str(doc)},
                   results_xml=str(xml))
    if not xml.exists():
        raise RuntimeError(f"the bench wrote no results ({xml}); see the simulator log")
    return _results(xml)
