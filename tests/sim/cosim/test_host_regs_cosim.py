"""cocotb on Icarus: the emitted host register port answers cocotbext-axi's AXI4-Lite master
for every register (reads, RW words and single bytes, SLVERR cases, START/CLEAR pulses)."""

import pytest

from bitmill.sim.cosim.tb_host_regs import run_bench

pytestmark = pytest.mark.cosim

BENCH_TESTS = ("smoke_read_id", "every_register", "ctrl_pulses")


@pytest.mark.parametrize("config", ["tiny", "tiny_bitparallel"])
def test_every_register_through_axi_lite(config, request, icarus, tmp_path_factory):
    cfg = request.getfixturevalue(config)
    result = run_bench(cfg, tmp_path_factory.mktemp(f"host-regs-{config}"), sim="icarus")
    assert result.tests == BENCH_TESTS
    assert result.failures == ()
