"""Random small networks on random accelerator configurations, compiled and run on the whole
accelerator RTL (Amaranth's simulator, the exact-latency AXI4 memory model): every tensor of the
final memory image equals the golden model's and every instruction starts and ends in the cycle
`sim/cycle.py` gives."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from bitmill.compiler import zoo
from bitmill.compiler.ir import TensorType
from bitmill.compiler.pipeline import compile_net
from bitmill.config import AccelConfig
from bitmill.hw.regmap import ErrorFlag
from bitmill.numerics import Encoding
from bitmill.sim import cycle
from bitmill.sim.check import check_against_golden

from tests.hw.test_accel import run_program


@st.composite
def configs(draw) -> AccelConfig:
    """A small array of either PE family with a random memory port."""
    base = AccelConfig.resolve(draw(st.sampled_from(["tiny", "tiny-bitparallel"])))
    return replace(base, name="random", rows=draw(st.integers(1, 3)), cols=draw(st.integers(1, 3)),
                   lanes=draw(st.sampled_from([4, 8])),
                   mem_bytes_per_cycle=draw(st.sampled_from([1, 2, 4, 8])),
                   mem_latency=draw(st.integers(1, 12)))


@st.composite
def networks(draw):
    """conv (k 1 or 3, stride 1 or 2) -> optional residual conv + ADD -> optional 2x2 MAXPOOL
    -> global AVGPOOL -> dense; random bits (1..8) and weight encodings per layer."""
    bits = st.integers(1, 8)
    enc = st.sampled_from([Encoding.SIGNED, Encoding.ODD])
    size = draw(st.integers(3, 6))
    image = TensorType((draw(st.integers(1, 3)), size, size), draw(bits), Encoding.UNSIGNED)
    b = zoo._Builder(image, draw(st.integers(0, 2**16)))
    ch = draw(st.integers(1, 4))
    x = b.conv("conv", "input", ch, draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 2])),
               draw(bits), draw(bits), True, draw(enc))
    if draw(st.booleans()):
        s = b.conv("conv2", x, ch, 3, 1, draw(bits), 8, False, draw(enc))
        x = b.add("add", x, s, draw(bits))
    if draw(st.booleans()) and min(b.types[x].shape[1:]) >= 2:
        x = b.maxpool("pool", x, 2, 2, 0)
    x = b.avgpool_flatten(x, draw(bits))
    graph = b.graph("random", b.dense("fc", x, draw(st.integers(1, 3)), draw(bits), draw(enc)))
    return graph, b.values["input"][:1]


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), net=networks())
def test_random_networks_run_bit_exact_and_cycle_for_cycle(cfg, net):
    graph, x = net
    program = compile_net(graph, cfg, x[0]).program
    start, end, _, _ = cycle.run_queues(program)
    run = run_program(program)
    assert run.error == 0 and run.status == 0b010, (ErrorFlag(run.error), run.error_instr)
    check_against_golden(graph, program, run.image, x[0])       # SimMismatch on any difference
    n = len(program.instructions)
    assert [run.start[i] for i in range(n)] == start.tolist()
    assert [run.end[i] for i in range(n)] == end.tolist()
    assert run.cycles == int(end.max()) and run.retired == n
