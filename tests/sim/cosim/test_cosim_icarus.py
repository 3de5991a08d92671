"""cocotb on Icarus: the emitted Verilog of the tiny configurations runs every (w_bits, a_bits)
in 1..8 x 1..8 with both weight encodings and both activation encodings (random tiles,
all-minimum, all-maximum, minimum-by-maximum, alternating; ragged K_total; the largest K_total
at W8A8) with zero mismatches against the golden GEMM and cycle counts equal to the formula."""

import pytest

from bitmill.sim.cosim.cases import EXTREMES, precisions
from bitmill.sim.cosim.runner import run_bench

pytestmark = pytest.mark.cosim

PRECISIONS = len(list(precisions()))            # 64 bit-width pairs x 2 x 2 encodings
SUITE_TILES = PRECISIONS * (1 + len(EXTREMES)) + 4 * len(EXTREMES)


@pytest.mark.parametrize("config,cells", [("tiny", None), ("tiny_bitparallel", None),
                                          ("tiny", "xc7")])
def test_every_precision_is_bit_exact(config, cells, request, icarus, tmp_path_factory):
    """``cells="xc7"``: the popcounts and terms built from 7-series primitives, run on
    yosys' simulation models of them."""
    cfg = request.getfixturevalue(config)
    result = run_bench(cfg, tmp_path_factory.mktemp(f"cosim-{config}"), sim="icarus", seed=1,
                       cells=cells)
    assert result.tiles == SUITE_TILES == 1296
    assert result.failures == ()
    assert result.value_mismatches == 0 and result.cycle_mismatches == 0
