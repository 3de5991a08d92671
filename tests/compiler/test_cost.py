"""Cost model: one layer against hand-computed `bitmill.timing` figures, and the stated relation
(`cost.RELATION`) between the estimate and the simulated statistics, layer by layer."""

import numpy as np
import pytest

from bitmill import timing
from bitmill.config import AccelConfig
from bitmill.geometry import Band
from bitmill.isa import Store, Sync
from bitmill.numerics import Encoding
from bitmill.compiler import cost, zoo
from bitmill.compiler.ir import TensorType
from bitmill.compiler.lower import lower
from bitmill.sim.verify import simulate_net
from tests.conftest import REPO

TINY = AccelConfig.load(REPO / "configs/accel/tiny.yaml")
S4 = AccelConfig.load(REPO / "configs/accel/sim-4x4-k16.yaml")
ECP5 = AccelConfig.load(REPO / "configs/accel/ecp5-85f.yaml")


def _net():
    """input (2, 6, 6) 8-bit -> 3x3 conv to 3 channels at W4 -> two 2x2/2 maxpools -> add -> ..."""
    b = zoo._Builder(TensorType((2, 6, 6), 8, Encoding.UNSIGNED), 0)
    x = b.conv("conv", "input", 3, 3, 1, 4, 8, True, Encoding.SIGNED)
    p = b.maxpool("pool", x, 2, 2, 0)
    q = b.maxpool("pool2", x, 2, 2, 0)
    s = b.add("add", p, q, 6)
    x = b.avgpool_flatten(s, 8)
    return b.graph("cost_net", b.dense("fc", x, 2, 8, Encoding.SIGNED))


def test_timing_figures_used_by_hand():
    # tiny: 2x2 bitserial array, 8 lanes (3 adder levels -> 2 tree stages), 8 B/cycle, latency 10
    assert timing.pipeline_latency("bitserial", 8) == 3 + 2 + 2
    stage_a, tile = timing.act_stage_cycles(TINY, 3, 2, 6, 8), timing.tile_cycles("bitserial", 8, 18, 4, 8) + 1
    # 18 pixel tiles of 2 x 2 results, streamed: the array is the longest (103 + 1 > 67 > 2 x 2 + 1),
    # so the tiles run back to back after the first staging; staging and readout overlap them
    assert (stage_a, tile) == (67, 104)
    assert timing.gemm_cycles(TINY, 36, 2, 3, 2, 6, 4, 8) == (
        1 + 24 + (2 * 2 + 1) + timing.weight_stage_cycles(TINY, 18, 4) + stage_a
        + 18 * tile + 1 + 4 + 2 + 10 + 7)
    assert timing.load_cycles(TINY, 0, 0, 72) == 2 + 10 + 9          # overhead, latency, words
    assert timing.load_cycles(TINY, 3, 0, 72) == 2 + 10 + 9 + 1      # slot words start a beat later
    assert timing.store_cycles(TINY, 3, 72) == 3 + 10 + 10           # 75 bytes of beats


def test_conv_layer_cost_by_hand():
    """One band of six rows, two channel tiles with resident weights (GEMMs of 1 and 1 tiles).
    LOADs: 48-byte requant table, 72 bytes of input rows, 27 bytes of weights; one SETUP and two
    GEMMs of 36 pixels x K=18 at W4A8 (18 array tiles of 3 chunks x 32 passes each); one STORE
    of 108 bytes."""
    est = lower(_net(), TINY).layers[0].estimate
    load = (12 + 48 // 8) + (12 + 72 // 8) + (12 + -(-27 // 8))                 # 18 + 21 + 16
    compute = 1 + timing.gemm_cycles(TINY, 36, 2, 3, 2, 6, 4, 8) + timing.gemm_cycles(TINY, 36, 1, 3, 2, 6, 4, 8)
    store = 13 + -(-108 // 8)                                                  # 27
    assert (est.load_cycles, est.compute_cycles, est.store_cycles) == (55, compute, 27)
    assert (load, store) == (55, 27)
    assert est.cycles == 55 + compute + 27


def test_vector_layer_costs_by_hand():
    """maxpool 2x2/2 of (3, 6, 6) 8-bit: one band of three rows reading six 18-byte rows, a VEC
    over 3*3*3 outputs x 4 window elements, a 27-byte STORE. add of two (3, 3, 3) operands: a
    32-byte constant table, two 27-byte loads, a VEC over 27 elements, a STORE of three 7-byte
    rows (9 codes of 6 bits each)."""
    layers = {l.name: l for l in lower(_net(), TINY).layers}
    pool, add = layers["pool"].estimate, layers["add"].estimate
    assert (pool.load_cycles, pool.compute_cycles, pool.store_cycles) == (
        12 + -(-108 // 8), 1 + timing.vec_unit_cycles(TINY, 1, 27, 2, 2, 0, 6, 6, 3, 3, 3, 8, 8),
        13 + -(-27 // 8))
    assert (add.load_cycles, add.compute_cycles, add.store_cycles) == (
        (12 + 4) + 2 * (12 + -(-27 // 8)), 1 + timing.vec_unit_cycles(TINY, 0, 27, 1, 1, 0, 3, 3, 3, 3, 3, 8, 6),
        13 + -(-21 // 8))
    assert layers["flatten"].estimate == cost.CostEstimate(0, 0, 0, 0)


def test_estimate_adds_up_listed_work():
    work = cost.LayerWork(loads=((0, 0, 1), (0, 0, 8), (5, 0, 9)), compute_cycles=(1, 100),
                          stores=((0, 64),))
    assert cost.estimate(work, TINY) == cost.CostEstimate(13 + 13 + 15, 101, 21, 41 + 101 + 21)
    bands = (Band(0, 2, 0, 3), Band(2, 3, 1, 3))
    w = cost.gemm_work(TINY, bands, 4, 10, 6, (3, 2, 5, 6), 4, 8, (1, 2), (27,), 48)
    assert w.loads == ((0, 0, 48), (0, 0, 30), (10, 0, 20), (0, 0, 27)) and w.stores == ((0, 12), (12, 6))
    g = (3, 2, 5)
    assert w.compute_cycles == (1, timing.gemm_cycles(TINY, 8, 2, *g, 4, 8), timing.gemm_cycles(TINY, 8, 4, *g, 4, 8),
                                1, timing.gemm_cycles(TINY, 4, 2, *g, 4, 8), timing.gemm_cycles(TINY, 4, 4, *g, 4, 8))


@pytest.mark.parametrize("model, bits, cfg", [("resnet8", "w4a4", S4), ("resnet8", "w4a4", ECP5),
                                              ("resnet20", "w2a2", S4), ("resnet20", "w2a2", ECP5),
                                              ("resnet8", zoo.BitSpec(3, 5, first_last_bits=8), ECP5)])
def test_estimate_relates_to_simulation_as_stated(model, bits, cfg):
    """`cost.RELATION`, checked on every layer of the network."""
    graph = zoo.build(model, bits)
    x = np.random.default_rng(3).integers(0, 256, size=graph.input.out.shape)
    compiled, stats = simulate_net(graph, cfg, x)
    p = compiled.program
    schedule = {l.name: l for l in compiled.schedule.layers}
    firsts = [s.first for s in p.segments] + [len(p.instructions)]
    store_cycles = []             # busy cycles of every STORE so far, in program order
    for seg, a, b, sim in zip(p.segments, firsts, firsts[1:], stats.layers):
        ls, instrs = schedule[sim.name], p.instructions[a:b]
        est = ls.estimate
        syncs = timing.SETUP_CYCLES * sum(isinstance(i, Sync) for i in instrs)
        assert seg.layer == sim.name
        assert est.load_cycles == sim.load_cycles and est.store_cycles == sim.store_cycles
        assert est.compute_cycles == sim.compute_cycles - syncs
        assert ls.traffic.loaded == sim.bytes_loaded and ls.traffic.out == sim.bytes_stored
        assert est.cycles == est.load_cycles + est.compute_cycles + est.store_cycles
        assert est.compute_cycles + syncs <= sim.cycles <= est.cycles + syncs + sum(store_cycles[-2:])
        store_cycles += [timing.store_cycles(cfg, i.dram_addr, i.nbytes) for i in instrs if isinstance(i, Store)]
    assert stats.cycles == stats.preload + sum(l.cycles for l in stats.layers)
