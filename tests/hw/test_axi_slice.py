# amaranth: UnusedElaboratable=no
"""`AxiResponseSlice` behind an `AxiSram` of latency ``L - 1``: exactly the timing of an
`AxiSram` of latency ``L`` for a master that takes every beat (the read and write schedules of
the memory model's own tests, driven by its benches), and, for a master that stalls, every
beat in order."""

from __future__ import annotations

import random

import pytest
from amaranth import Module
from amaranth.lib import wiring

from bitmill.hw.axi_slice import AxiResponseSlice
from bitmill.hw.axi_sram import AxiSram
from tests.sim.cosim.test_axi_memory import (B, DEPTH, READ_BURSTS, _image, _simulate, b_schedule,
                                             read_bench, read_schedule, stalling_read_bench,
                                             write_bench)


def _sliced(latency: int, image: bytes = b""):
    """(top, the slice's master port) with the memory answering in L - 1."""
    m = Module()
    m.submodules.mem = mem = AxiSram(B, latency - 1, DEPTH, image)
    m.submodules.slice = sl = AxiResponseSlice(32, B, 1)
    wiring.connect(m, sl.slave, mem.bus)
    return m, sl.master


@pytest.mark.parametrize("latency", [2, 3, 4, 5, 8])
def test_reads_take_exactly_l_cycles(latency):
    image = _image(latency)
    top, bus = _sliced(latency, image)
    got = []
    _simulate(top, read_bench(bus, READ_BURSTS, got))
    assert got == read_schedule(READ_BURSTS, latency, image)


@pytest.mark.parametrize("latency", [2, 3, 6])
def test_a_stalling_master_gets_every_beat_in_order(latency):
    image = _image(5)
    top, bus = _sliced(latency, image)
    bursts = [(0, 40, 5), (1, 200, 2), (2, 0, 0), (3, 500, 7)]
    got, held = [], []
    _simulate(top, stalling_read_bench(bus, bursts, random.Random(2), got, held, cycles=120))
    assert got == [beat[1:] for beat in read_schedule(bursts, latency, image)]
    assert len(held) > len(got)         # some beats waited for rready


@pytest.mark.parametrize("latency, bready_from", [(2, 0), (4, 0), (4, 12)])
def test_b_responses_take_exactly_l_cycles(latency, bready_from):
    top, bus = _sliced(latency, _image(latency))
    got = []
    _simulate(top, write_bench(bus, bready_from, got))
    assert got == b_schedule(latency, bready_from)
