# amaranth: UnusedElaboratable=no
"""`AxiResponseSlice` behind an `AxiSram` of latency ``L - 1``: exactly the timing of an
`AxiSram` of latency ``L`` for a master that takes every beat (the read and write schedules of
the memory model's own tests), and, for a master that stalls, every beat in order."""

from __future__ import annotations

import random

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from bitmill.hw.axi_slice import AxiResponseSlice
from bitmill.hw.axi_sram import AxiSram
from tests.sim.cosim.test_axi_memory import B, DEPTH, _drive_writes, _image, read_schedule


def _sliced(latency: int, image: bytes = b""):
    """(top, the slice's master port, the memory) with the memory answering in L - 1."""
    m = Module()
    m.submodules.mem = mem = AxiSram(B, latency - 1, DEPTH, image)
    m.submodules.slice = sl = AxiResponseSlice(32, B, 1)
    wiring.connect(m, sl.slave, mem.bus)
    return m, sl.master, mem


def _simulate(top, bench) -> None:
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("latency", [2, 3, 4, 5, 8])
def test_reads_take_exactly_l_cycles(latency):
    image = _image(latency)
    top, bus, _ = _sliced(latency, image)
    bursts = [(0, 0, 3), (1, 64, 0), (2, 128, 1), (3, 12, 2), (30, 8, 0), (31, DEPTH - 8, 3)]
    got = []

    async def bench(ctx):
        ctx.set(bus.rready, 1)
        pending = list(bursts)
        for c in range(60):
            ar = pending[0] if pending and pending[0][0] == c else None
            ctx.set(bus.arvalid, ar is not None)
            if ar:
                ctx.set(bus.araddr, ar[1])
                ctx.set(bus.arlen, ar[2])
                assert ctx.get(bus.arready)
                pending.pop(0)
            if ctx.get(bus.rvalid):
                got.append((c, ctx.get(bus.rdata), ctx.get(bus.rlast), ctx.get(bus.rresp)))
            await ctx.tick()

    _simulate(top, bench)
    assert got == read_schedule(bursts, latency, image)


@pytest.mark.parametrize("latency", [2, 3, 6])
def test_a_stalling_master_gets_every_beat_in_order(latency):
    image = _image(5)
    top, bus, _ = _sliced(latency, image)
    bursts = [(0, 40, 5), (1, 200, 2), (2, 0, 0), (3, 500, 7)]
    rng = random.Random(2)
    got, stalled = [], 0

    async def bench(ctx):
        nonlocal stalled
        for c in range(120):
            ctx.set(bus.arvalid, c < len(bursts))
            if c < len(bursts):
                ctx.set(bus.araddr, bursts[c][1])
                ctx.set(bus.arlen, bursts[c][2])
            ready = rng.random() < 0.4
            ctx.set(bus.rready, ready)
            if ctx.get(bus.rvalid):
                if ready:
                    got.append((ctx.get(bus.rdata), ctx.get(bus.rlast), ctx.get(bus.rresp)))
                else:
                    stalled += 1
            await ctx.tick()

    _simulate(top, bench)
    assert got == [beat[1:] for beat in read_schedule(bursts, latency, image)]
    assert stalled > 0


@pytest.mark.parametrize("latency, bready_from", [(2, 0), (4, 0), (4, 12)])
def test_b_responses_take_exactly_l_cycles(latency, bready_from):
    top, bus, mem = _sliced(latency, _image(latency))
    aws = {0: (16, 2), 1: (100, 0), 6: (DEPTH - 4, 1)}
    ws = {0: (0x11223344, 0xF, 0), 1: (0x55667788, 0b0110, 0), 2: (0x99AABBCC, 0b1000, 1),
          5: (0xDEADBEEF, 0b0011, 1), 6: (0x01020304, 0xF, 0), 7: (0x05060708, 0xF, 1)}
    got = []

    async def bench(ctx):
        for c in range(40):
            _drive_writes(ctx, bus, c, aws, ws)
            ctx.set(bus.bready, c >= bready_from)
            if c in ws:
                assert ctx.get(bus.wready)
            if ctx.get(bus.bvalid) and c >= bready_from:
                got.append((c, ctx.get(bus.bresp)))
            await ctx.tick()

    _simulate(top, bench)
    b1 = max(2 + latency, bready_from)
    b2 = max(5 + latency, b1 + 1)
    b3 = max(7 + latency, b2 + 1)
    assert got == [(b1, 0), (b2, 0), (b3, 3)]
