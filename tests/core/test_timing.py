import pytest

from bitmill import timing


@pytest.mark.parametrize("lanes,stages", [(1, 1), (2, 1), (4, 1), (8, 2), (32, 3), (64, 3), (256, 4)])
def test_adder_tree_stages(lanes, stages):
    assert timing.adder_tree_stages(lanes) == stages


def test_tile_cycles_formula():
    # 70 lanes of reduction on K=32 lanes: 3 chunks
    assert timing.tile_cycles("bitserial", 32, 70, 3, 5) == 3 * 15 + (3 + 3 + 1 + 1)
    assert timing.tile_cycles("bitparallel", 32, 70, 3, 5) == 3 + (3 + 1 + 3 + 1 + 1)
    assert timing.tile_cycles("bitserial", 8, 8, 1, 1) == 1 + 7
    # runtime precision: cycles scale with w_bits * a_bits
    base = timing.tile_cycles("bitserial", 64, 4608, 1, 1) - timing.pipeline_latency("bitserial", 64)
    for w in range(1, 9):
        for a in range(1, 9):
            c = timing.tile_cycles("bitserial", 64, 4608, w, a)
            assert c - timing.pipeline_latency("bitserial", 64) == base * w * a


def test_bad_arguments():
    with pytest.raises(ValueError, match="w_bits must be in 1..8, not 9"):
        timing.tile_cycles("bitserial", 8, 8, 9, 1)
    with pytest.raises(ValueError, match="family must be one of"):
        timing.pipeline_latency("systolic", 8)
    with pytest.raises(ValueError, match="k_total must be a positive integer"):
        timing.tile_cycles("bitparallel", 8, 0, 1, 1)
