"""cocotb bench of the emitted tile engine: driver (buffer loads and commands), monitor
(cycles to ``done``, result read-back); model and checker: `bitmill.sim.cosim.checker`
(golden GEMM and `bitmill.timing`, exact equality). Run by `bitmill.sim.cosim.runner`;
environment:

* ``BITMILL_MANIFEST``: the ports manifest written by `bitmill.hw.verilog`
* ``BITMILL_SEED``: seed of the tile suite (`bitmill.sim.cosim.cases.suite`)
* ``BITMILL_LIMIT``: run only the first N tiles (0: all)
* ``BITMILL_SUMMARY``: JSON file to write the counts to
* ``BITMILL_BUS``: "narrow" when the toplevel is `bitmill.hw.top.NarrowTop` (the 16-bit bus
  of the synthesized tops, `BusDriver`) instead of the bare engine
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from bitmill.hw.verilog import engine_from_manifest
from bitmill.hw.engine import TileEngine, load_layout
from bitmill.hw.top import BUS_BITS, BusOp
from bitmill.sim.cosim.cases import suite
from bitmill.sim.cosim.checker import TileChecker
from bitmill.sim.cosim.tiles import ACTIVATIONS, WEIGHTS, Tile, command, tile_loads


class Driver:
    """Writes buffer words and issues tile commands."""

    def __init__(self, dut, engine: TileEngine):
        self.dut, self.engine = dut, engine
        self.layout = load_layout(engine.word_bits, engine.depth)

    async def load(self, tile: Tile) -> None:
        dut = self.dut
        for target, addr, word in tile_loads(tile, self.engine):
            fields = {"target": target, "addr": addr, "data": word}
            dut.load__payload.value = self.layout.const(fields).as_value().value
            dut.load__valid.value = 1
            await RisingEdge(dut.clk)
        dut.load__valid.value = 0

    async def issue(self, tile: Tile) -> None:
        """Present the command until the edge that accepts it."""
        dut = self.dut
        dut.cmd__payload.value = command(tile, self.engine)
        dut.cmd__valid.value = 1
        while True:
            await ReadOnly()
            ready = int(dut.cmd__ready.value)
            await RisingEdge(dut.clk)
            if ready:
                break
        dut.cmd__valid.value = 0


class BusDriver:
    """`Driver` through `bitmill.hw.top.NarrowTop`'s bus: a word in 16-bit ``SHIFT`` beats
    (most significant first), then a ``LOAD_W``/``LOAD_A`` beat with the address; a command
    in one ``CMD`` beat (the engine is idle: the bench waits for ``done`` between tiles)."""

    def __init__(self, dut, engine: TileEngine):
        self.dut, self.engine = dut, engine

    async def beat(self, op: BusOp, data: int) -> None:
        self.dut.bus_op.value = op.value
        self.dut.bus_data.value = data
        self.dut.bus_valid.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.bus_valid.value = 0

    async def load(self, tile: Tile) -> None:
        beats = -(-self.engine.word_bits // BUS_BITS)
        mask = (1 << BUS_BITS) - 1
        ops = {WEIGHTS: BusOp.LOAD_W, ACTIVATIONS: BusOp.LOAD_A}
        for target, addr, word in tile_loads(tile, self.engine):
            for n in reversed(range(beats)):
                await self.beat(BusOp.SHIFT, (word >> (n * BUS_BITS)) & mask)
            await self.beat(ops[target], addr)

    async def issue(self, tile: Tile) -> None:
        await self.beat(BusOp.CMD, command(tile, self.engine))


class Monitor:
    """Counts edges from command acceptance to ``done`` and reads the results back."""

    def __init__(self, dut, engine: TileEngine):
        self.dut, self.engine = dut, engine

    async def wait_done(self, limit: int) -> int:
        cycles = 0
        while True:
            await ReadOnly()
            if int(self.dut.done.value):
                return cycles
            if cycles > limit:
                raise AssertionError(f"no done within {limit} cycles")
            await RisingEdge(self.dut.clk)
            cycles += 1

    async def results(self) -> np.ndarray:
        e, dut = self.engine, self.dut
        out = np.zeros((e.rows, e.cols), dtype=np.int64)
        await RisingEdge(dut.clk)
        for n in range(e.rows * e.cols):
            dut.res_addr.value = n
            for _ in range(e.res_latency):
                await RisingEdge(dut.clk)
            await ReadOnly()
            out[n // e.cols, n % e.cols] = dut.res_data.value.to_signed()
            await RisingEdge(dut.clk)
        return out


@cocotb.test()
async def tiles_match_golden(dut):
    """Every tile of the suite: exact results and tile cycles equal to the formula."""
    with open(os.environ["BITMILL_MANIFEST"]) as fh:
        doc = json.load(fh)
    engine = engine_from_manifest(doc)
    tiles = suite(engine, int(os.environ.get("BITMILL_SEED", "0")))
    limit = int(os.environ.get("BITMILL_LIMIT", "0"))
    tiles = tiles[:limit] if limit else tiles
    Clock(dut.clk, 10, unit="ns", impl="gpi").start()
    narrow = os.environ.get("BITMILL_BUS") == "narrow"
    dut.rst.value = 1
    if narrow:
        dut.bus_valid.value = 0
    else:
        dut.load__valid.value, dut.cmd__valid.value = 0, 0
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    driver = (BusDriver if narrow else Driver)(dut, engine)
    monitor, checker = Monitor(dut, engine), TileChecker(engine)
    start = time.perf_counter()
    for tile in tiles:
        await driver.load(tile)
        await driver.issue(tile)
        want = engine.tile_cycles(tile.k_total, tile.w_bits, tile.a_bits)
        cycles = await monitor.wait_done(limit=4 * want + 16)
        checker.check(tile, await monitor.results(), cycles)
    summary = {**checker.summary(), "wall_s": round(time.perf_counter() - start, 2)}
    if os.environ.get("BITMILL_SUMMARY"):
        with open(os.environ["BITMILL_SUMMARY"], "w") as fh:
            json.dump(summary, fh, indent=2)
    assert not checker.failures, "\n".join(checker.failures)
