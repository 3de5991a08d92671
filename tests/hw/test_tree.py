# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth import signed
from amaranth.sim import Simulator

from bitmill.hw.tree import AdderTree
from bitmill.timing import adder_tree_stages


def _run(tree: AdderTree, vectors: list[list[int]]) -> list[int]:
    """Stream one vector per cycle; collect ``sum`` ``latency`` cycles later."""
    got: list[int] = []

    async def bench(ctx):
        for n in range(len(vectors) + tree.latency):
            if n < len(vectors):
                ctx.set(tree.inputs, vectors[n])
            await ctx.tick()
            if n + 1 >= tree.latency:
                got.append(ctx.get(tree.sum))

    sim = Simulator(tree)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got[:len(vectors)]


@pytest.mark.parametrize("lanes", [1, 2, 3, 7, 8, 13, 32])
def test_popcount_is_pipelined_and_exact(lanes):
    rng = np.random.default_rng(lanes)
    vectors = [[0] * lanes, [1] * lanes] + rng.integers(0, 2, (20, lanes)).tolist()
    tree = AdderTree(lanes)
    assert tree.latency == adder_tree_stages(lanes)
    assert _run(tree, vectors) == [sum(v) for v in vectors]


def test_signed_sum_extremes():
    tree = AdderTree(5, signed(18))
    lo, hi = -(1 << 17), (1 << 17) - 1
    vectors = [[lo] * 5, [hi] * 5, [lo, hi, lo, hi, lo], [-1, 1, 0, 5, -7]]
    assert _run(tree, vectors) == [sum(v) for v in vectors]


@pytest.mark.parametrize("lanes,message", [(0, "lanes must be a positive integer, not 0"),
                                           (True, "lanes must be a positive integer, not True"),
                                           (5000, "lanes must be at most 4096, not 5000")])
def test_bad_parameters(lanes, message):
    with pytest.raises(ValueError, match=message):
        AdderTree(lanes)
