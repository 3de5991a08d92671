# amaranth: UnusedElaboratable=no
"""The compressor-tree popcount against Python's bit count, gated and plain, over lane counts
that exercise every remainder of the 3- and 6-bit groups, with the latency of the adder tree."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from bitmill.hw.popcount import Popcount, compress, levels_needed
from bitmill.timing import adder_tree_stages


def run(pc: Popcount, xs: list[int], masks: list[int]) -> list[int]:
    got: list[int] = []

    async def bench(ctx):
        for n in range(len(xs) + pc.latency):
            if n < len(xs):
                ctx.set(pc.x, xs[n])
                ctx.set(pc.mask, masks[n])
            await ctx.tick()
            if n + 1 >= pc.latency:
                got.append(ctx.get(pc.sum))

    sim = Simulator(pc)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got[:len(xs)]


@pytest.mark.parametrize("lanes", [1, 2, 3, 5, 6, 7, 13, 32, 64, 100])
@pytest.mark.parametrize("gated", [False, True])
def test_popcount_equals_bit_count(lanes, gated):
    rng = np.random.default_rng(lanes)
    full = (1 << lanes) - 1
    xs = [int.from_bytes(rng.bytes(16), "little") & full for _ in range(24)] + [full, 0, full]
    masks = [int.from_bytes(rng.bytes(16), "little") & full for _ in range(24)] + [full, full, 0]
    pc = Popcount(lanes, gated)
    want = [bin(x & m if gated else x).count("1") for x, m in zip(xs, masks)]
    assert run(pc, xs, masks) == want
    assert pc.latency == adder_tree_stages(lanes)


@pytest.mark.parametrize("lanes", [8, 31, 64, 256])
def test_levels_end_with_two_rows(lanes):
    for gated in (False, True):
        columns = [[1] * lanes]
        for n in range(levels_needed(lanes, gated)):
            columns = compress(columns, first=n == 0 and gated)
        assert all(len(c) <= 2 for c in columns)
        assert sum(b << w for w, c in enumerate(columns) for b in c) == lanes


def test_bad_lanes():
    with pytest.raises(ValueError, match="lanes must be a positive integer, not 0"):
        Popcount(0)
