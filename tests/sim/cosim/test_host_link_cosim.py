"""cocotb on Icarus: the emitted host link (UART + request bridge + the register slave) answers
cocotbext-uart's source and sink like a host: every request, bad requests, cut requests and
stray bytes."""

import pytest

from bitmill.sim.cosim.tb_host_link import run_bench

pytestmark = pytest.mark.cosim

BENCH_TESTS = ("every_request", "bad_requests", "cut_requests_and_stray_bytes")


def test_host_link_through_uart(icarus, tmp_path):
    result = run_bench(tmp_path / "host-link", sim="icarus")
    assert result.tests == BENCH_TESTS
    assert result.failures == ()
