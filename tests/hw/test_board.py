# amaranth: UnusedElaboratable=no
"""The board core (accelerator, its block-RAM memory, the host link) on Amaranth's simulator,
driven only through its UART pins by the host runtime: a compiled network loaded, two images
classified, each output equal to golden's and each CYCLES register equal to the simulator's."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from bitmill import hostlink
from bitmill.cli import board_runtime as rt
from bitmill.compiler.pipeline import compile_net
from bitmill.config import AccelConfig
from bitmill.hostlink import parse_reply, request
from bitmill.hw.board import BoardCore
from bitmill.sim import cycle, golden
from bitmill.isa import Encoding
from tests.hw import uart_pins
from tests.hw.test_accel import _net

DIVISOR = 4


def _drive(dut, steps_list):
    """Run each generator of link calls against ``dut`` through its UART pins; their results."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    received: list[int] = []
    results = []

    async def host(ctx):
        for steps in steps_list:
            try:
                call = next(steps)
                while True:
                    await uart_pins.send(ctx, dut.uart_rx, request(*call), DIVISOR)
                    while True:
                        try:
                            reply, n = parse_reply(bytes(received))
                            del received[:n]
                            break
                        except hostlink.ReplyError:
                            await ctx.tick()
                    call = steps.send(reply)
            except StopIteration as done:
                results.append(done.value)

    sim.add_testbench(uart_pins.receiver(dut.uart_tx, DIVISOR, received), background=True)
    sim.add_testbench(host)
    sim.run()
    return results


@pytest.mark.slow
def test_images_classified_through_the_uart_equal_golden_and_the_simulator():
    cfg = AccelConfig.resolve("tiny")
    graph = _net(4, 4, Encoding.SIGNED)
    rng = np.random.default_rng(11)
    xs = [rng.integers(0, 256, size=graph.input.out.shape) for _ in range(2)]
    program = compile_net(graph, cfg, xs[0]).program
    out_node = graph.nodes[-1]
    net = rt.loaded_network(program, "input", graph.input.out.shape, out_node.name, out_node.out.shape)
    dut = BoardCore(cfg, DIVISOR, 1 << (len(net.image) - 1).bit_length())
    results = _drive(dut, [rt.load(net)] + [rt.infer(net, x) for x in xs])
    expected_cycles = int(cycle.run_queues(program)[1].max())
    for x, got in zip(xs, results[1:]):
        np.testing.assert_array_equal(got.output, golden.run(graph, x[None])[0])
        assert got.cycles == expected_cycles
