"""cocotb on Icarus: the whole accelerator with cocotbext-axi's AxiRam as DRAM and
AxiLiteMaster as the host runs a compiled network (conv, residual add, maxpool, avgpool,
dense) and a chain of 64 layers at every (w_bits, a_bits): every tensor of the final image equals golden, the registers report DONE, no error,
every instruction retired; a program that deadlocks raises DEADLOCK naming its instruction."""

import numpy as np
import pytest

from bitmill.compiler.pipeline import compile_net
from bitmill.config import AccelConfig
from bitmill.hw.regmap import ErrorFlag
from bitmill.isa import Buffer, Deps, Load, Program
from bitmill.numerics import Encoding
from bitmill.sim.check import check_against_golden
from bitmill.sim.cosim.tb_accel import run_accel_bench
from tests.hw.test_accel import _net, all_precisions_net

pytestmark = pytest.mark.cosim


@pytest.mark.parametrize("cfg_name, w_bits, a_bits, enc", [
    ("tiny", 4, 4, Encoding.SIGNED),
    pytest.param("tiny-bitparallel", 2, 3, Encoding.ODD, marks=pytest.mark.slow)])
def test_a_network_runs_through_axi_models(cfg_name, w_bits, a_bits, enc, icarus, tmp_path_factory):
    cfg = AccelConfig.resolve(cfg_name)
    graph = _net(w_bits, a_bits, enc)
    x = np.random.default_rng(6).integers(0, 256, size=graph.input.out.shape)
    program = compile_net(graph, cfg, x).program
    run = run_accel_bench(program, tmp_path_factory.mktemp(f"accel-{cfg_name}"))
    regs = run.registers
    assert regs["STATUS"] == 0b010 and regs["ERROR"] == 0, regs
    assert regs["RETIRED"] == len(program.instructions)
    check_against_golden(graph, program, run.image[:len(program.memory)], x)


@pytest.mark.parametrize("cfg_name, enc", [
    ("tiny", Encoding.SIGNED), pytest.param("tiny-bitparallel", Encoding.ODD, marks=pytest.mark.slow)])
def test_every_precision_runs_through_axi_models(cfg_name, enc, icarus, tmp_path_factory):
    """One program, 64 layers: every (w_bits, a_bits) in 1..8 x 1..8 (`all_precisions_net`)."""
    graph, x = all_precisions_net(enc)
    program = compile_net(graph, AccelConfig.resolve(cfg_name), x).program
    run = run_accel_bench(program, tmp_path_factory.mktemp(f"pairs-{cfg_name}"))
    assert run.registers["STATUS"] == 0b010 and run.registers["ERROR"] == 0, run.registers
    check_against_golden(graph, program, run.image[:len(program.memory)], x)


def test_a_deadlocked_program_stops_with_its_error(icarus, tmp_path_factory):
    cfg = AccelConfig.resolve("tiny")
    program = Program((Load(Buffer.ACT.value, 0, 0, 16, deps=Deps(pop_next=True)),), bytes(64), cfg)
    regs = run_accel_bench(program, tmp_path_factory.mktemp("accel-deadlock")).registers
    assert regs["STATUS"] == 0b110 and regs["ERROR"] == ErrorFlag.DEADLOCK and regs["ERROR_INSTR"] == 0
