# amaranth: UnusedElaboratable=no
"""The hand-mapped popcount (`bitmill.hw.bitheap` on `bitmill.hw.cells`): the simulated
model against Python's bit count, the 7-series netlist proven equal to the model, and the
truth tables of the cells."""

import numpy as np
import pytest
from amaranth import Module, Signal

from bitmill.errors import BitmillError
from bitmill.hw import bitheap
from bitmill.hw.cells import Xc7Cells, lut6_2_init, lut_init, make_cells
from bitmill.hw.array import MacArray
from bitmill.hw.engine import TileEngine
from bitmill.hw.equiv import prove_equivalent
from bitmill.hw.pe import BitSerialPE
from bitmill.hw.popcount import Popcount
from bitmill.timing import adder_tree_stages
from tests.hw.test_popcount import run


@pytest.mark.parametrize("lanes", [1, 2, 3, 4, 5, 7, 8, 9, 13, 17, 32, 33, 64, 100, 256])
@pytest.mark.parametrize("gated", [False, True])
def test_model_equals_bit_count(lanes, gated):
    rng = np.random.default_rng(lanes + 1000 * gated)
    full = (1 << lanes) - 1
    xs = [int.from_bytes(rng.bytes(40), "little") & full for _ in range(24)] + [full, 0, full]
    masks = [int.from_bytes(rng.bytes(40), "little") & full for _ in range(24)] + [full, full, 0]
    pc = Popcount(lanes, gated, cells="model")
    want = [bin(x & m if gated else x).count("1") for x, m in zip(xs, masks)]
    assert run(pc, xs, masks) == want
    assert pc.latency == adder_tree_stages(lanes)


@pytest.mark.parametrize("lanes,gated", [(5, True), (32, True), (33, False), (64, False)])
def test_xc7_netlist_is_proven_equal_to_the_model(lanes, gated, tmp_path):
    gold = Popcount(lanes, gated, cells="model")
    gate = Popcount(lanes, gated, cells="xc7")
    assert prove_equivalent(gold, gate, gold.latency + 1, tmp_path) >= 0


class _OneWrongInit(Xc7Cells):
    """Xc7 cells whose first dual-output LUT has one truth-table bit flipped."""

    def __init__(self):
        super().__init__()
        self.flipped = False

    def lut2(self, m, inputs, fn6, fn5):
        if not self.flipped:
            self.flipped = True
            return super().lut2(m, inputs, lambda *b: fn6(*b) ^ (sum(b) == len(b)), fn5)
        return super().lut2(m, inputs, fn6, fn5)


def test_equivalence_proof_catches_a_wrong_truth_table(tmp_path, monkeypatch):
    gold = Popcount(8, True, cells="model")
    monkeypatch.setattr("bitmill.hw.popcount.make_cells", lambda style: _OneWrongInit())
    gate = Popcount(8, True, cells="xc7")
    with pytest.raises(BitmillError, match="not equivalent over 3 cycles"):
        prove_equivalent(gold, gate, 3, tmp_path)


def test_counts_use_fewer_luts_than_lanes():
    """Per lane: the AND chains cost 1/2 LUT, the counters about 1/2 LUT per removed bit."""
    for lanes in (32, 64, 256):
        for gated, bound in ((True, 0.9), (False, 0.6)):
            cells = make_cells("model")
            tree = bitheap.Compressor(cells, lanes, gated, adder_tree_stages(lanes))
            tree.build(Module(), Signal(lanes), Signal(lanes) if gated else None,
                       Signal(lanes.bit_length()))
            assert cells.count["lut"] <= bound * lanes, (lanes, gated, cells.count)


def test_truth_tables():
    assert lut_init(lambda a, b: a & b, 2) == 0b1000
    assert lut_init(lambda a, b, c: a ^ b ^ c, 3) == 0x96
    init = lut6_2_init(lambda a, b, c: a ^ b ^ c, lambda a, b, c: (a + b + c) >> 1, 3)
    assert init & 0xFF == 0xE8 and (init >> 32) & 0xFF == 0x96
    with pytest.raises(ValueError, match="a LUT has 0..6 inputs, not 7"):
        lut_init(lambda *b: 0, 7)
    with pytest.raises(ValueError, match="cell style must be 'model' or 'xc7', not 'ice40'"):
        make_cells("ice40")


def test_register_after_spreads_the_stages():
    for lanes in (8, 32, 64, 256):
        for gated in (False, True):
            stages = adder_tree_stages(lanes)
            cuts = bitheap.register_after(lanes, gated, stages)
            assert len(cuts) <= stages - 1
            assert all(0 <= c <= bitheap.levels(lanes, gated) + 1 for c in cuts)


@pytest.mark.parametrize("lanes", [8, 32])
def test_xc7_pe_is_proven_equal_to_the_model(lanes, tmp_path):
    """The whole bit-serial PE: popcount, the hand-mapped signed term, the accumulator."""
    gold, gate = (BitSerialPE(lanes, 16, cells) for cells in ("model", "xc7"))
    assert prove_equivalent(gold, gate, gold.latency + 2, tmp_path) >= 0


@pytest.mark.parametrize("make", [lambda: Popcount(8, cells="ecp5"),
                                  lambda: BitSerialPE(8, 16, "ecp5"),
                                  lambda: MacArray(2, 2, 8, "bitserial", 16, "ecp5"),
                                  lambda: TileEngine(2, 2, 8, "bitserial", 4, "ecp5")])
def test_unknown_cell_style_is_rejected_at_construction(make):
    with pytest.raises(ValueError, match="cells must be None or one of model, xc7, not 'ecp5'"):
        make()
