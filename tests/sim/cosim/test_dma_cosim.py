"""cocotb on Icarus: the DMA engines against cocotbext-axi's AxiRam (LOADs into a buffer
memory, STOREs out of it, unaligned, 1-byte, 4 KiB-crossing and longer-than-256-beat
transfers); every DRAM and buffer byte equals the model of the transfers."""

import dataclasses

import pytest

from bitmill.config import AccelConfig
from bitmill.sim.cosim.tb_dma import run_dma_bench

pytestmark = pytest.mark.cosim


@pytest.mark.parametrize("b", [8, 16])
def test_dma_moves_exact_bytes_through_axi_ram(b, icarus, tmp_path_factory):
    cfg = dataclasses.replace(AccelConfig.resolve("tiny"), mem_bytes_per_cycle=b,
                              out_buffer_bytes=16384)
    summary = run_dma_bench(cfg, tmp_path_factory.mktemp(f"dma-b{b}"), sim="icarus", seed=b)
    assert summary == {"loads": 9, "stores": 7, "failures": []}
