# amaranth: UnusedElaboratable=no
"""Whole tiles in Amaranth's simulator: exact results (golden GEMM) and cycle counts
(`bitmill.timing.tile_cycles`) for both PE families."""

import numpy as np
import pytest

from bitmill import timing
from bitmill.config import AccelConfig
from bitmill.hw.engine import TileEngine, engine_chunks
from bitmill.hw.params import accumulator_width
from bitmill.numerics import Encoding, accumulator_bits
from bitmill.sim.cosim.amsim import check_tiles
from bitmill.sim.cosim.cases import extreme_tile, random_tile
from bitmill.sim.cosim.tiles import expected

S, O, U = Encoding.SIGNED, Encoding.ODD, Encoding.UNSIGNED
PRECISIONS = [(1, O, 1, U), (2, S, 3, S), (3, O, 5, U), (5, S, 2, U), (7, O, 4, S), (8, S, 8, S),
              (8, O, 8, U), (4, S, 8, U)]


@pytest.mark.parametrize("family,cells", [("bitserial", None), ("bitparallel", None),
                                          ("bitserial", "model")])
def test_tiles_match_golden_and_formula(family, cells):
    """``cells="model"``: the hand-mapped popcounts and the array's column counts."""
    engine = TileEngine(2, 3, 8, family, 4, cells)
    rng = np.random.default_rng(7)
    tiles = [random_tile(engine, p, rng, k) for p, k in zip(PRECISIONS, [1, 9, 8, 23, 17, 32, 5, 30])]
    tiles += [extreme_tile(engine, (8, O, 8, U), "max", 32),
              extreme_tile(engine, (8, S, 8, S), "min", 32),
              extreme_tile(engine, (8, S, 8, U), "min_max", 31),
              extreme_tile(engine, (3, O, 2, S), "alternating", 13)]
    checker, results = check_tiles(engine, tiles)
    for tile, (got, cycles) in zip(tiles, results):
        np.testing.assert_array_equal(got, expected(tile))
        assert cycles == timing.tile_cycles(family, 8, tile.k_total, tile.w_bits, tile.a_bits)
    assert checker.tiles == len(tiles) and checker.failures == []


@pytest.mark.parametrize("family", ["bitserial", "bitparallel"])
@pytest.mark.parametrize("lanes", [1, 5, 8, 32, 64])
def test_latency_is_the_shared_formula(family, lanes):
    engine = TileEngine(1, 1, lanes, family, 2)
    assert engine.latency == timing.pipeline_latency(family, lanes)
    assert engine.tile_cycles(100, 3, 4) == timing.tile_cycles(family, lanes, 100, 3, 4)


def test_accumulator_width_covers_every_precision():
    k = 128
    width = accumulator_width(k)
    for wb, we, ab, ae in [(8, S, 8, S), (8, O, 8, U), (8, U, 8, U), (8, O, 8, S)]:
        assert accumulator_bits(k, wb, we, ab, ae) <= width
    assert width == 24            # 128 * 255 * 255 < 2^23


def test_from_config_sizes_chunks(tiny):
    engine = TileEngine.from_config(tiny)
    assert engine_chunks(tiny) == 16 and engine.max_k_total == 128
    assert engine.acc_width <= tiny.acc_bits


def test_config_without_room_is_rejected(tiny):
    cfg = AccelConfig.from_dict({**tiny.to_dict(), "lanes": 1024, "acc_bits": 16})
    with pytest.raises(ValueError, match="tiny: the tile engine cannot be built: acc_bits 16 is too "
                                         "narrow for one 1024-lane chunk at 8 bits"):
        engine_chunks(cfg)


@pytest.mark.parametrize("kwargs,message", [
    ({"rows": 0}, "rows must be a positive integer, not 0"),
    ({"cols": -1}, "cols must be a positive integer, not -1"),
    ({"rows": 300}, "rows must be at most 256, not 300"),
    ({"max_chunks": 2.0}, "max_chunks must be a positive integer, not 2.0"),
    ({"family": "dsp"}, "family must be one of bitserial, bitparallel, not 'dsp'"),
    ({"act_halves": 3}, "act_halves must be 1 or 2, not 3"),
    ({"shadow": 1}, "shadow must be a bool, not 1"),
])
def test_bad_parameters(kwargs, message):
    args = {"rows": 2, "cols": 2, "lanes": 8, "family": "bitserial", "max_chunks": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        TileEngine(**args)
