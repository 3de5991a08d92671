"""The whole accelerator runs compiled networks: every tensor of the final memory image equals
the golden model's, and every instruction starts and ends in the cycle `sim/cycle.py` gives;
the host reads DONE, the cycle counter and the error flags through its registers."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from bitmill import isa
from bitmill.compiler import zoo
from bitmill.compiler.ir import TensorType
from bitmill.compiler.lower import lower
from bitmill.compiler.pipeline import compile_net
from bitmill.config import AccelConfig
from bitmill.hw.accel import Accelerator, trace_signature
from bitmill.hw.axi_lite import AxiLiteSignature
from bitmill.hw.host_regs import ADDR_WIDTH
from bitmill.hw.regmap import DATA_BITS, ErrorFlag, register
from bitmill.isa import Deps, Load, Program, Buffer, Setup
from bitmill.numerics import Encoding
from bitmill.sim import cycle
from bitmill.sim.check import check_against_golden
from bitmill.hw.axi_sram import AxiSram
from bitmill.program_file import program_image
from bitmill.sim.cosim.axi_memory import read_bytes


class AccelBench(wiring.Component):
    """The accelerator on the exact-latency memory model (read back through its backdoor)."""

    def __init__(self, cfg: AccelConfig, image: bytes):
        self.cfg = cfg
        b = cfg.mem_bytes_per_cycle
        self.depth = -(-len(image) // b) * b + b
        self.memory = AxiSram(b, cfg.mem_latency, self.depth, image)
        super().__init__({"host": In(AxiLiteSignature(ADDR_WIDTH, DATA_BITS)),
                          "trace": Out(trace_signature()), "running": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.accel = accel = Accelerator(self.cfg)
        m.submodules.memory = self.memory
        wiring.connect(m, accel.mem, self.memory.bus)
        wiring.connect(m, wiring.flipped(self.host), accel.host)
        wiring.connect(m, wiring.flipped(self.trace), accel.trace)
        m.d.comb += self.running.eq(accel.running)
        return m


async def host_write(ctx, bus, name: str, value: int) -> None:
    """One AXI4-Lite write of register ``name``."""
    ctx.set(bus.awaddr, register(name).offset)
    ctx.set(bus.wdata, value)
    ctx.set(bus.wstrb, 0xF)
    ctx.set(bus.awvalid, 1)
    ctx.set(bus.wvalid, 1)
    ctx.set(bus.bready, 1)
    aw = w = False
    while not (aw and w):
        aw_now, w_now = ctx.get(bus.awready), ctx.get(bus.wready)
        await ctx.tick()
        if aw_now:
            aw = True
            ctx.set(bus.awvalid, 0)
        if w_now:
            w = True
            ctx.set(bus.wvalid, 0)
    while not ctx.get(bus.bvalid):
        await ctx.tick()
    await ctx.tick()
    ctx.set(bus.bready, 0)


async def host_read(ctx, bus, name: str) -> int:
    """One AXI4-Lite read of register ``name``."""
    ctx.set(bus.araddr, register(name).offset)
    ctx.set(bus.arvalid, 1)
    ctx.set(bus.rready, 1)
    while not ctx.get(bus.arready):
        await ctx.tick()
    await ctx.tick()
    ctx.set(bus.arvalid, 0)
    while not ctx.get(bus.rvalid):
        await ctx.tick()
    value = ctx.get(bus.rdata)
    await ctx.tick()
    ctx.set(bus.rready, 0)
    return value


@dataclass
class RtlRun:
    """What the RTL did: per program index its start and end cycle (cycle 0: the first cycle
    after START), the registers at the end, the final memory image."""
    start: dict = field(default_factory=dict)
    end: dict = field(default_factory=dict)
    status: int = 0
    error: int = 0
    error_instr: int = 0
    cycles: int = 0
    retired: int = 0
    image: bytes = b""


def run_program(program: Program, limit: int = 2_000_000) -> RtlRun:
    """Run ``program`` on the accelerator RTL in Amaranth's simulator."""
    cfg = program.config
    image, prog_addr = program_image(program)
    dut = AccelBench(cfg, image)
    run = RtlRun()

    async def bench(ctx):
        bus = dut.host
        await host_write(ctx, bus, "PROG_ADDR", prog_addr)
        await host_write(ctx, bus, "PROG_COUNT", program.fill_words()[0])
        await host_write(ctx, bus, "MEM_BYTES", len(image))
        await host_write(ctx, bus, "CTRL", 1)
        t, t0 = 0, None
        queues = 3
        while t < limit:
            if t0 is None and ctx.get(dut.running):
                t0 = t
            if t0 is not None:
                for q in range(queues):
                    if ctx.get(dut.trace.start[q]):
                        run.start[ctx.get(dut.trace.index[q])] = t - t0
                        _open[q].append(ctx.get(dut.trace.index[q]))
                    if ctx.get(dut.trace.finish[q]):
                        run.end[_open[q].pop(0)] = t + 1 - t0
                if not ctx.get(dut.running):
                    break
            await ctx.tick()
            t += 1
        run.status = await host_read(ctx, bus, "STATUS")
        run.error = await host_read(ctx, bus, "ERROR")
        run.error_instr = await host_read(ctx, bus, "ERROR_INSTR")
        run.cycles = await host_read(ctx, bus, "CYCLES_LO")
        run.retired = await host_read(ctx, bus, "RETIRED")
        run.image = await read_bytes(ctx, dut.memory, 0, len(program.memory))

    _open = [[], [], []]
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return run


def _net(w_bits: int, a_bits: int, enc: Encoding, channels: tuple[int, int] = (2, 3)):
    b = zoo._Builder(TensorType((channels[0], 5, 5), 8, Encoding.UNSIGNED), 3)
    x = b.conv("conv", "input", channels[1], 3, 1, w_bits, a_bits, True, enc)
    s = b.conv("conv2", x, channels[1], 3, 1, w_bits, 8, False, enc)
    x = b.add("add", x, s, 6)
    x = b.maxpool("pool", x, 2, 2, 0)
    x = b.avgpool_flatten(x, 8)
    return b.graph("e2e", b.dense("fc", x, 3, 8, enc))


def all_precisions_net(enc: Encoding):
    """64 1x1 convolutions in a chain, one per (w_bits, a_bits) in 1..8 x 1..8: each layer's
    output bits are the next layer's activation bits."""
    pairs = [(w, a) for w in range(1, 9) for a in range(1, 9)]
    b = zoo._Builder(TensorType((2, 2, 2), pairs[0][1], Encoding.UNSIGNED), 7)
    x = "input"
    for i, (w, _) in enumerate(pairs):
        out_bits = pairs[i + 1][1] if i + 1 < len(pairs) else 8
        x = b.conv(f"conv{i}", x, 2, 1, 1, w, out_bits, True, enc)
    return b.graph("pairs", x), b.values["input"][0]


@pytest.mark.parametrize("cfg_name, enc", [("tiny", Encoding.SIGNED), ("tiny-bitparallel", Encoding.ODD)])
def test_every_precision_runs_bit_exact_and_cycle_for_cycle(cfg_name, enc):
    graph, x = all_precisions_net(enc)
    program = compile_net(graph, AccelConfig.resolve(cfg_name), x).program
    assert {(i.w_bits, i.a_bits) for i in program.instructions if isinstance(i, Setup)} == {
        (w, a) for w in range(1, 9) for a in range(1, 9)}
    start, end, _, _ = cycle.run_queues(program)
    run = run_program(program)
    assert run.error == 0 and run.status == 0b010, (ErrorFlag(run.error), run.error_instr)
    check_against_golden(graph, program, run.image, x)
    n = len(program.instructions)
    assert [run.start[i] for i in range(n)] == start.tolist()
    assert [run.end[i] for i in range(n)] == end.tolist()


@pytest.mark.parametrize("cfg_name, w_bits, a_bits, enc, passes", [
    ("tiny", 4, 4, Encoding.SIGNED, 1), ("tiny-bitparallel", 3, 5, Encoding.ODD, 1),
    ("tiny", 2, 3, Encoding.SIGNED, 4), ("tiny-bitparallel", 5, 2, Encoding.ODD, 2)])
def test_a_network_runs_bit_exact_and_cycle_for_cycle(cfg_name, w_bits, a_bits, enc, passes):
    """With ``passes > 1`` both convolutions sum 144 terms over 16 channels, beyond the engine's
    128: two partial-sum passes per pixel tile."""
    cfg = replace(AccelConfig.resolve(cfg_name), k_passes=passes)
    graph = _net(w_bits, a_bits, enc, (16, 16) if passes > 1 else (2, 3))
    assert len(isa.pass_rows(cfg, 3, 16 if passes > 1 else 3)) == min(passes, 2)
    _check_network(graph, cfg)


@pytest.mark.parametrize("cfg_name, enc", [("tiny", Encoding.SIGNED), ("tiny-bitparallel", Encoding.ODD)])
def test_channel_tiles_narrower_than_the_array_run_bit_exact_and_cycle_for_cycle(cfg_name, enc):
    """A 256-byte weight slot holds one row of 144 weights at 8 bits, not the array's two:
    the convolution runs in 3 one-channel tiles with the array's second row idle."""
    cfg = replace(AccelConfig.resolve(cfg_name), weight_buffer_bytes=512, k_passes=4)
    b = zoo._Builder(TensorType((16, 3, 3), 2, Encoding.UNSIGNED), 5)
    x = b.conv("conv", "input", 3, 3, 1, 8, 2, True, enc)
    graph = b.graph("narrow", b.dense("fc", b.avgpool_flatten(x, 4), 2, 8, enc))
    tiles = {ls.name: (ls.tile_rows, ls.channel_tiles) for ls in lower(graph, cfg).layers}
    assert tiles["conv"] == (1, 3) and tiles["fc"] == (2, 1)
    _check_network(graph, cfg)


@pytest.mark.parametrize("cfg_name, w_bits, a_bits, enc, act_read", [
    ("tiny", 4, 3, Encoding.SIGNED, 16), ("tiny-bitparallel", 3, 5, Encoding.ODD, 64)])
def test_wide_activation_words_run_bit_exact_and_cycle_for_cycle(cfg_name, w_bits, a_bits, enc, act_read):
    """The activation buffer read ``act_read`` bytes at a time by the GEMM stager (the LOAD
    writes 8-byte beats into their lanes, the vector unit reads its lane of a word): with 32
    lanes of 3 or 5 bits a piece spans more than one 8-byte word, so fewer staging reads per
    im2col piece and fewer cycles, the same values."""
    cfg = replace(AccelConfig.resolve(cfg_name), act_read_bytes=act_read, k_passes=2, lanes=32)
    graph = _net(w_bits, a_bits, enc, (16, 16))
    base = replace(cfg, act_read_bytes=0)
    x = np.random.default_rng(4).integers(0, 1 << graph.input.out.bits, size=graph.input.out.shape)
    wide, narrow = (int(cycle.run_queues(compile_net(graph, c, x).program)[1].max()) for c in (cfg, base))
    assert wide < narrow
    _check_network(graph, cfg)


@pytest.mark.parametrize("cfg_name, enc, depth", [("tiny", Encoding.SIGNED, 4), ("tiny-bitparallel", Encoding.ODD, 9)])
def test_a_program_in_fills_runs_bit_exact_and_cycle_for_cycle(cfg_name, enc, depth):
    """Queue memories of ``depth`` instructions: the network's program runs in fills, each
    preloaded (after its REFILL word) once the previous one has finished."""
    cfg = replace(AccelConfig.resolve(cfg_name), queue_depth=depth)
    graph = _net(4, 3, enc)
    assert len(compile_net(graph, cfg).program.fills) >= 3
    _check_network(graph, cfg)


def _check_network(graph, cfg: AccelConfig) -> None:
    x = np.random.default_rng(4).integers(0, 1 << graph.input.out.bits, size=graph.input.out.shape)
    program = compile_net(graph, cfg, x).program
    start, end, _, _ = cycle.run_queues(program)
    run = run_program(program)
    assert run.error == 0 and run.status == 0b010, (ErrorFlag(run.error), run.error_instr)
    check_against_golden(graph, program, run.image, x)          # SimMismatch on any difference
    n = len(program.instructions)
    assert [run.start[i] for i in range(n)] == start.tolist()
    assert [run.end[i] for i in range(n)] == end.tolist()
    assert run.cycles == int(end.max()) and run.retired == n


def test_a_bad_program_raises_an_error_flag_and_stops():
    cfg = AccelConfig.resolve("tiny")
    program = Program((Load(Buffer.ACT.value, 0, 0, 16, deps=Deps(pop_next=True)),), bytes(64), cfg)
    run = run_program(program, limit=5000)
    assert run.status == 0b110 and run.error == ErrorFlag.DEADLOCK and run.error_instr == 0
