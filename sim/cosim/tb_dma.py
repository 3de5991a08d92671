"""cocotb bench of the DMA engines (`bitmill.hw.dma`) on an RTL simulator, with cocotbext-axi's
``AxiRam`` as the DRAM: LOADs into a buffer memory, STOREs back out of it, every byte checked
against a model of the DRAM and of the buffer (function only: ``AxiRam`` has its own timing).

`DmaBenchTop` is the toplevel (both engines on one AXI4 master ``mem``, a buffer memory that
LOAD writes and STORE reads, a peek port); `run_dma_bench` emits it, builds it and runs this
module's test through ``cocotb_tools.runner``. Environment of the bench:

* ``BITMILL_DMA_CONFIG``: the `AccelConfig` as JSON
* ``BITMILL_SEED``: seed of the DRAM and buffer contents and of the transfers
* ``BITMILL_SUMMARY``: JSON file to write the counts and failures to
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import cocotb
from amaranth import Module, Mux
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiRam

from bitmill.config import AccelConfig
from bitmill.hw.axi import AxiSignature
from bitmill.hw.dma import LoadDma, StoreDma, load_command_layout, store_command_layout
from bitmill.isa import Buffer, slot_bytes
from bitmill.sim.cosim.runner import build_and_test

TOP = "dma_bench"
DRAM_BYTES = 20 * 1024
TB_MODULE = "bitmill.sim.cosim.tb_dma"


def buffer_image(depth_bytes: int, seed: int) -> bytes:
    """The buffer memory's initial contents."""
    rng = random.Random(seed ^ 0xB0F)
    return bytes(rng.randrange(256) for _ in range(depth_bytes))


def dram_image(seed: int) -> bytes:
    rng = random.Random(seed ^ 0xD7A)
    return bytes(rng.randrange(256) for _ in range(DRAM_BYTES))


class DmaBenchTop(wiring.Component):
    """LoadDma's AR/R and StoreDma's AW/W/B on one master ``mem``; one buffer memory of the
    largest buffer's depth (LOAD writes it; STORE reads it, the ``peek`` port while STORE is
    idle: data one cycle after the address)."""

    def __init__(self, cfg: AccelConfig, seed: int = 0):
        self._cfg, b = cfg, cfg.mem_bytes_per_cycle
        self.load, self.store = LoadDma(cfg), StoreDma(cfg)
        self.depth = max(self.load.depth, self.store.depth)
        image = buffer_image(self.depth * b, seed)
        self.buffer = Memory(shape=8 * b, depth=self.depth, init=[
            int.from_bytes(image[i:i + b], "little") for i in range(0, len(image), b)])
        super().__init__({
            "mem": Out(AxiSignature(32, b, 1)),
            "load_start": In(1), "load_cmd": In(load_command_layout(cfg)),
            "load_finish": Out(1), "load_error": Out(1),
            "store_start": In(1), "store_cmd": In(store_command_layout(cfg)),
            "store_finish": Out(1), "store_error": Out(1),
            "peek_addr": In(range(self.depth)), "peek_data": Out(8 * b)})

    def elaborate(self, platform) -> Module:
        m = Module()
        load, store = self.load, self.store
        m.submodules.load, m.submodules.store = load, store
        m.submodules.buffer = self.buffer
        for name, member in self.mem.signature.members.items():
            engine = load if name.startswith(("ar", "r")) else store
            ours, theirs = getattr(self.mem, name), getattr(engine.mem, name)
            m.d.comb += ours.eq(theirs) if member.flow == Out else theirs.eq(ours)
        m.d.comb += [load.start.eq(self.load_start), load.cmd.eq(self.load_cmd),
                     self.load_finish.eq(load.finish), self.load_error.eq(load.error),
                     store.start.eq(self.store_start), store.cmd.eq(self.store_cmd),
                     self.store_finish.eq(store.finish), self.store_error.eq(store.error)]
        wr = self.buffer.write_port(granularity=8)
        m.d.comb += [wr.addr.eq(load.write.payload.addr), wr.data.eq(load.write.payload.data),
                     wr.en.eq(Mux(load.write.valid, load.write.payload.en, 0))]
        rd = self.buffer.read_port()
        m.d.comb += [rd.addr.eq(Mux(store.start | store.busy, store.read_addr, self.peek_addr)),
                     store.read_data.eq(rd.data), self.peek_data.eq(rd.data)]
        return m


@dataclass(frozen=True)
class Case:
    """One LOAD (``buffer`` set) or STORE (``buffer`` None)."""
    dram_addr: int
    nbytes: int
    offset: int = 0
    buffer: Buffer | None = None
    slot: int = 0


def dma_cases(cfg: AccelConfig, seed: int) -> list[Case]:
    """Loads then stores: unaligned both sides, 1 byte, 4 KiB crossings, more than 256 beats,
    then random ones."""
    b, rng = cfg.mem_bytes_per_cycle, random.Random(seed)
    w, p, out = Buffer.WEIGHT, Buffer.PARAM, slot_bytes(cfg, Buffer.OUT)
    cases = [Case(3, 1, 5, w), Case(b - 1, 2 * b + 3, 1, w, 1), Case(1, 3 * b, b - 1, Buffer.ACT),
             Case(4096 - 5, 40, 0, w), Case(77, min(260 * b + 9, slot_bytes(cfg, p) - 5), 5, p, 1),
             Case(9, 1), Case(4096 - 2 * b + 1, min(out, 5 * b), slot=1),
             Case(8192 - 3, min(out, 257 * b))]
    for _ in range(4):
        buf = rng.choice([Buffer.WEIGHT, Buffer.ACT, Buffer.PARAM])
        n = rng.randrange(1, min(slot_bytes(cfg, buf), 64 * b) + 1)
        cases.append(Case(rng.randrange(DRAM_BYTES - n), n, rng.randrange(slot_bytes(cfg, buf) - n + 1),
                          buf, rng.randrange(2)))
    for _ in range(4):
        n = rng.randrange(1, min(out, 64 * b) + 1)
        cases.append(Case(rng.randrange(DRAM_BYTES - n), n, slot=rng.randrange(2)))
    return cases


def slot_base(cfg: AccelConfig, buffer: Buffer, slot: int) -> int:
    """Word address of a slot's first word."""
    return slot * slot_bytes(cfg, buffer) // cfg.mem_bytes_per_cycle


def run_dma_bench(cfg: AccelConfig, build_dir: str | Path, sim: str = "icarus",
                  seed: int = 0) -> dict:
    """Emit `DmaBenchTop` for ``cfg``, build it for ``sim`` in ``build_dir`` and run the bench;
    returns its summary (``loads``, ``stores``, ``failures``)."""
    build_dir = Path(build_dir).resolve() / sim
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{TOP}.v"
    source.write_text(verilog.convert(DmaBenchTop(cfg, seed), name=TOP))
    summary = build_dir / f"summary-{seed}.json"
    summary.unlink(missing_ok=True)
    env = {"BITMILL_DMA_CONFIG": json.dumps(cfg.to_dict()), "BITMILL_SEED": str(seed),
           "BITMILL_SUMMARY": str(summary)}
    build_and_test(sim, [source], TOP, build_dir, TB_MODULE, env)
    if not summary.exists():
        raise RuntimeError(f"the bench wrote no summary ({summary}); see the simulator log")
    return json.loads(summary.read_text())


# ---- the cocotb bench (runs inside the simulator) -------------------------------------------

class Bench:
    """Drives the engines of `DmaBenchTop` and keeps the expected DRAM and buffer bytes."""

    def __init__(self, dut, cfg: AccelConfig, seed: int):
        self.dut, self.cfg, self.b = dut, cfg, cfg.mem_bytes_per_cycle
        self.dram = bytearray(dram_image(seed))
        depth = max(LoadDma(cfg).depth, StoreDma(cfg).depth)
        self.buffer = bytearray(buffer_image(depth * self.b, seed))
        self.ram = AxiRam(AxiBus.from_prefix(dut, "mem_"), dut.clk, dut.rst, size=DRAM_BYTES)
        self.ram.write(0, bytes(self.dram))
        self.failures: list[str] = []

    async def reset(self) -> None:
        dut = self.dut
        for port in (dut.load_start, dut.store_start, dut.peek_addr):
            port.value = 0
        dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def command(self, kind: str, fields: dict) -> int:
        """Present ``fields`` a cycle ahead, pulse ``<kind>_start``; wait for finish; return
        ``error``."""
        dut = self.dut
        layout = (load_command_layout if kind == "load" else store_command_layout)(self.cfg)
        getattr(dut, f"{kind}_cmd").value = layout.const(fields).as_value().value
        await RisingEdge(dut.clk)                # the command is held from the cycle before start
        getattr(dut, f"{kind}_start").value = 1
        await RisingEdge(dut.clk)
        getattr(dut, f"{kind}_start").value = 0
        for _ in range(100_000):
            await ReadOnly()
            if int(getattr(dut, f"{kind}_finish").value):
                error = int(getattr(dut, f"{kind}_error").value)
                await RisingEdge(dut.clk)
                return error
            await RisingEdge(dut.clk)
        raise TimeoutError(f"{kind} {fields} never finished")

    async def peek(self, first: int, words: int) -> bytes:
        """Buffer words ``first .. first+words-1`` through the peek port (two cycles each)."""
        dut, out = self.dut, bytearray()
        for w in range(first, first + words):
            dut.peek_addr.value = w
            await RisingEdge(dut.clk)
            await RisingEdge(dut.clk)
            await ReadOnly()
            out += int(dut.peek_data.value).to_bytes(self.b, "little")
            await RisingEdge(dut.clk)
        return bytes(out)

    async def run(self, case: Case) -> None:
        cfg, b = self.cfg, self.b
        if case.buffer is not None:
            base = slot_base(cfg, case.buffer, case.slot)
            fields = {"dram_addr": case.dram_addr, "nbytes": case.nbytes, "offset": case.offset,
                      "base": base, "slot_bytes": slot_bytes(cfg, case.buffer), "limit": DRAM_BYTES}
            start = base * b + case.offset
            self.buffer[start:start + case.nbytes] = self.dram[case.dram_addr:case.dram_addr + case.nbytes]
        else:
            base = slot_base(cfg, Buffer.OUT, case.slot)
            fields = {"dram_addr": case.dram_addr, "nbytes": case.nbytes, "base": base,
                      "limit": DRAM_BYTES}
            self.dram[case.dram_addr:case.dram_addr + case.nbytes] = self.buffer[base * b:base * b + case.nbytes]
        error = await self.command("load" if case.buffer is not None else "store", fields)
        if error:
            self.failures.append(f"{case}: error flagged")

    def first_difference(self, what: str, got: bytes, want: bytes) -> None:
        if got != want:
            i = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
            self.failures.append(f"{what}: byte {i} is {got[i]}, expected {want[i]}")


@cocotb.test()
async def dma_moves_exact_bytes(dut):
    """LOADs and STOREs between AxiRam and the buffer; then every DRAM and buffer byte."""
    cfg = AccelConfig.from_dict(json.loads(os.environ["BITMILL_DMA_CONFIG"]))
    seed = int(os.environ.get("BITMILL_SEED", "0"))
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    bench = Bench(dut, cfg, seed)
    await bench.reset()
    cases = dma_cases(cfg, seed)
    for case in cases:
        await bench.run(case)
    bench.first_difference("DRAM", bench.ram.read(0, DRAM_BYTES), bytes(bench.dram))
    words = len(bench.buffer) // bench.b
    bench.first_difference("buffer", await bench.peek(0, words), bytes(bench.buffer))
    loads = sum(c.buffer is not None for c in cases)
    Path(os.environ["BITMILL_SUMMARY"]).write_text(json.dumps(
        {"loads": loads, "stores": len(cases) - loads, "failures": bench.failures}))
    assert not bench.failures, bench.failures
