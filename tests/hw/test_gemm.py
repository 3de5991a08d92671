"""The GEMM unit executes every GEMM of compiled networks bit for bit as the functional model
(`sim/functional.py`) and in the cycles `bitmill.timing.gemm_cycles` gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from bitmill import isa, timing
from bitmill.compiler import zoo
from bitmill.compiler.ir import TensorType
from bitmill.compiler.pipeline import compile_net
from bitmill.config import AccelConfig
from bitmill.hw.axi import buffer_write_signature
from bitmill.hw.buffers import Buffers, buffer_depth, read_signature, slot_words
from bitmill.hw.gemm import GemmUnit
from bitmill.isa import Buffer, Gemm, Setup
from bitmill.numerics import Encoding
from bitmill.packing import pack_rows
from bitmill.sim import cycle
from bitmill.sim.functional import MachineState


class GemmBench(wiring.Component):
    """The GEMM unit on the slot buffers; the testbench fills them through ``load`` and reads
    the output buffer through ``store_read``."""

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        b = cfg.mem_bytes_per_cycle
        body = isa.layout(cfg)["body"].shape
        loadable = max(buffer_depth(cfg, x) for x in Buffer if x is not Buffer.OUT)
        super().__init__({
            "load": In(buffer_write_signature(b, loadable)), "load_target": In(Buffer),
            "out_fill": In(buffer_write_signature(b, buffer_depth(cfg, Buffer.OUT))),
            "store_read": In(read_signature(b, buffer_depth(cfg, Buffer.OUT))),
            "start": In(1), "instr": In(body["gemm"].shape), "regs": In(body["setup"].shape),
            "busy": Out(1), "finish": Out(1), "error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bufs = bufs = Buffers(self.cfg)
        m.submodules.gemm = gemm = GemmUnit(self.cfg)
        for name in ("weights", "acts", "params", "out_read"):
            wiring.connect(m, getattr(gemm, name), getattr(bufs, name))
        wiring.connect(m, wiring.flipped(self.load), bufs.load)
        wiring.connect(m, wiring.flipped(self.store_read), bufs.store_read)
        fill = self.out_fill
        m.d.comb += [bufs.load_target.eq(self.load_target),
                     bufs.out_write.valid.eq(gemm.out_write.valid | fill.valid),
                     bufs.out_write.payload.eq(gemm.out_write.payload)]
        with m.If(fill.valid):
            m.d.comb += bufs.out_write.payload.eq(fill.payload)
        m.d.comb += [gemm.start.eq(self.start), gemm.instr.eq(self.instr), gemm.regs.eq(self.regs),
                     self.busy.eq(gemm.busy), self.finish.eq(gemm.finish), self.error.eq(gemm.error)]
        return m


def _slot_bytes(state: MachineState, buf: Buffer, slot: int) -> dict[int, bytes]:
    """Byte offset -> bytes of what LOADs put into a slot."""
    return {off: e.data.tobytes() for off, e in state.slots.get((buf.value, slot), {}).items()}


def _out_bytes(state: MachineState, slot: int) -> bytes:
    state._flush(slot)
    cur = state.out.get(slot)
    if cur is None:
        return b""
    r = cur.regs
    return pack_rows(cur.values.reshape(cur.values.shape[0], -1), r.out_bits,
                     Encoding.SIGNED if r.out_signed else Encoding.UNSIGNED)


def gemm_cases(cfg: AccelConfig, graph, seed: int = 0):
    """(setup, gemm, {(buffer, slot): {offset: bytes}}, out bytes before, out bytes after) of
    every GEMM of ``graph`` compiled for ``cfg``, in the order the machine runs them."""
    x = np.random.default_rng(seed).integers(0, 256, size=graph.input.out.shape)
    prog = compile_net(graph, cfg, x).program
    start, _ = cycle.schedule_times(prog)
    state = MachineState(prog.memory, cfg)
    out = []
    for idx in np.lexsort((np.arange(len(start)), start)):
        ins = prog.instructions[idx]
        if isinstance(ins, Gemm):
            slots = {(buf, s): _slot_bytes(state, buf, s) for buf, s in
                     ((Buffer.WEIGHT, ins.w_slot), (Buffer.ACT, ins.a_slot), (Buffer.PARAM, ins.p_slot))}
            before = _out_bytes(state, ins.o_slot) if state.out.get(ins.o_slot) and \
                state.out[ins.o_slot].regs == state.regs else b""
            state.apply(ins)
            out.append((state.regs, ins, slots, before, _out_bytes(state, ins.o_slot)))
        else:
            state.apply(ins)
    return out


def run_gemms(cfg: AccelConfig, cases, stale: int = 0) -> list[tuple[bytes, int, bool]]:
    """(output slot bytes, cycles start..finish+1, error) of each case on the RTL; the output
    slot's bytes past what earlier GEMMs wrote hold ``stale`` before each case."""
    dut = GemmBench(cfg)
    b = cfg.mem_bytes_per_cycle
    lay = isa.layout(cfg)
    results = []

    async def write_bytes(ctx, port, base_word: int, offset: int, blob: bytes, target=None):
        if target is not None:
            ctx.set(dut.load_target, target)
        data = bytearray(offset % b) + blob
        first = base_word + offset // b
        for w in range(-(-len(data) // b)):
            chunk = data[w * b:(w + 1) * b]
            en = sum(1 << i for i in range(len(chunk)) if w or i >= offset % b)
            ctx.set(port.valid, 1)
            ctx.set(port.payload, {"addr": first + w, "data": int.from_bytes(chunk.ljust(b, b"\0"), "little"),
                                   "en": en})
            await ctx.tick()
        ctx.set(port.valid, 0)

    async def bench(ctx):
        for regs, ins, slots, before, after in cases:
            for (buf, s), parts in slots.items():
                for off, blob in parts.items():
                    await write_bytes(ctx, dut.load, s * slot_words(cfg, buf), off, blob, buf)
            out_base = ins.o_slot * slot_words(cfg, Buffer.OUT)
            await write_bytes(ctx, dut.out_fill, out_base, 0, before.ljust(len(after), bytes([stale])))
            ctx.set(dut.regs, lay.const({"opcode": isa.Opcode.SETUP, "body": {"setup": isa._body_fields(regs, cfg)}})
                    .body.setup)
            ctx.set(dut.instr, lay.const({"opcode": isa.Opcode.GEMM, "body": {"gemm": isa._body_fields(ins, cfg)}})
                    .body.gemm)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles = 1
            while not ctx.get(dut.finish):
                await ctx.tick()
                cycles += 1
                assert cycles < 100_000, f"{ins} did not finish"
            cycles += 1                     # finish cycle + 1 - start cycle
            error = bool(ctx.get(dut.error))
            await ctx.tick()
            got = bytearray()
            for w in range(-(-len(after) // b)):
                ctx.set(dut.store_read.addr, out_base + w)
                await ctx.tick()
                got += ctx.get(dut.store_read.data).to_bytes(b, "little")
            results.append((bytes(got[:len(after)]), cycles, error))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def _small_net(kernel: int, stride: int, w_bits: int, a_bits: int, enc: Encoding, cin: int = 3,
               cout: int = 3, size: int = 5, fc_out: int = 3):
    b = zoo._Builder(TensorType((cin, size, size), 8, Encoding.UNSIGNED), 7)
    x = b.conv("conv", "input", cout, kernel, stride, w_bits, a_bits, True, enc)
    x = b.avgpool_flatten(x, 8)
    return b.graph("small", b.dense("fc", x, fc_out, 8, enc))


@pytest.mark.parametrize("cfg_name", ["tiny", "tiny-bitparallel"])
@pytest.mark.parametrize("kernel, stride, w_bits, a_bits, enc", [
    (3, 1, 4, 4, Encoding.SIGNED), (3, 2, 2, 3, Encoding.ODD), (1, 1, 8, 8, Encoding.SIGNED)])
def test_gemms_of_a_small_network_match_the_functional_model(cfg_name, kernel, stride, w_bits, a_bits, enc):
    cfg = AccelConfig.resolve(cfg_name)
    cases = gemm_cases(cfg, _small_net(kernel, stride, w_bits, a_bits, enc))
    results = run_gemms(cfg, cases)
    for (regs, ins, _, _, after), (got, cycles, error) in zip(cases, results):
        assert not error, ins
        assert got == after, ins
        assert cycles == timing.gemm_cycles(cfg, ins.npix, ins.rows, regs.kernel, regs.in_c, regs.in_w,
                                            regs.w_bits, regs.a_bits), ins


@pytest.mark.parametrize("out_w, bits", [(5, 3), (3, 5)])
def test_a_gemm_zeroes_the_padding_after_each_row_over_stale_bits(out_w, bits):
    """Rows of ``out_w * out_c`` codes that end inside a byte: the packer zeroes the rest of
    the byte (`bitmill.packing.pack_rows`), whatever the output slot held before (one GEMM
    writes every code of the tensor: ``out_c`` is the array's rows)."""
    cfg = AccelConfig.resolve("tiny")
    b = zoo._Builder(TensorType((3, out_w, out_w), 8, Encoding.UNSIGNED), 7)
    x = b.conv("conv", "input", cfg.rows, 3, 1, 4, bits, True, Encoding.SIGNED)
    cases = gemm_cases(cfg, b.graph("pad", x))
    assert len(cases) == 1 and (out_w * cfg.rows * bits) % 8
    for (regs, ins, _, _, after), (got, _, error) in zip(cases, run_gemms(cfg, cases, stale=0xFF)):
        assert not error and got == after, ins


def _bound(cfg: AccelConfig, regs, ins) -> str:
    """What bounds the steady state of the GEMM's first channel tile: "stage" (activation
    staging), "tile" (the array) or "readout"."""
    k_total = regs.kernel * regs.kernel * regs.in_c
    times = {"stage": timing.act_stage_cycles(cfg, regs.kernel, regs.in_c, regs.in_w, regs.a_bits),
             "tile": timing.tile_cycles(cfg.pe_family, cfg.lanes, k_total, regs.w_bits, regs.a_bits)
             + timing.TILE_DONE,
             "readout": min(cfg.rows, ins.rows) * cfg.cols + 1}
    return max(times, key=times.get)


WIDE = dataclasses.replace(AccelConfig.resolve("tiny"), name="tiny-8x8", rows=8, cols=8, max_feature_size=15)


@pytest.mark.parametrize("cfg, net, bound", [
    (AccelConfig.resolve("tiny"), _small_net(3, 1, 2, 3, Encoding.SIGNED, cin=1, cout=5), "stage"),
    (AccelConfig.resolve("tiny-bitparallel"), _small_net(3, 1, 4, 4, Encoding.SIGNED, cout=5), "stage"),
    (AccelConfig.resolve("tiny"), _small_net(1, 1, 8, 8, Encoding.SIGNED, cout=5, fc_out=5), "tile"),
    (WIDE, _small_net(1, 1, 2, 2, Encoding.SIGNED, cout=20), "readout")],
    ids=["stage-bound", "stage-bound-bitparallel", "tile-bound", "readout-bound"])
def test_streamed_pixel_tiles_match_the_functional_model_and_formula(cfg, net, bound):
    """Several pixel tiles per GEMM in each steady state, and GEMMs of several channel tiles
    (the next channel tile's first pixel tile is staged while the last one of the previous
    runs; with one pixel tile (the dense layer of the tile-bound case), while the only one
    runs)."""
    cases = gemm_cases(cfg, net)
    streamed = [ins for regs, ins, *_ in cases if ins.npix > 2 * cfg.cols]
    assert any(_bound(cfg, regs, ins) == bound for regs, ins, *_ in cases if ins in streamed)
    assert any(ins.rows > cfg.rows for ins in streamed)
    for (regs, ins, _, _, after), (got, cycles, error) in zip(cases, run_gemms(cfg, cases)):
        assert not error, ins
        assert got == after, ins
        assert cycles == timing.gemm_cycles(cfg, ins.npix, ins.rows, regs.kernel, regs.in_c, regs.in_w,
                                            regs.w_bits, regs.a_bits), ins


@pytest.mark.parametrize("cfg_name", ["tiny", "tiny-bitparallel"])
@pytest.mark.parametrize("kernel, stride, cin, w_bits, a_bits, enc, passes", [
    (3, 1, 16, 4, 4, Encoding.SIGNED, (2, 1)),      # 144 terms: 2 + 1 kernel rows of 48
    (3, 2, 32, 3, 5, Encoding.ODD, (1, 1, 1)),      # 288 terms: one row of 96 per pass
    (7, 2, 3, 2, 8, Encoding.SIGNED, (6, 1))],      # 147 terms: 6 + 1 rows of 21
    ids=["2-passes", "3-passes", "7x7"])
def test_partial_sum_passes_match_the_functional_model_and_formula(cfg_name, kernel, stride, cin, w_bits,
                                                                    a_bits, enc, passes):
    """K_total beyond the engine (tiny: 128 terms per pass): every pixel tile runs its passes
    of whole kernel rows, summed in the shadow registers; several pixel tiles per GEMM."""
    cfg = dataclasses.replace(AccelConfig.resolve(cfg_name), k_passes=4)
    assert isa.pass_rows(cfg, kernel, cin) == passes
    net = _small_net(kernel, stride, w_bits, a_bits, enc, cin=cin, cout=3, size=7)
    cases = gemm_cases(cfg, net)
    assert sum(regs.kernel == kernel and ins.npix > cfg.cols for regs, ins, *_ in cases) >= 2
    for (regs, ins, _, _, after), (got, cycles, error) in zip(cases, run_gemms(cfg, cases)):
        assert not error, ins
        assert got == after, ins
        assert cycles == timing.gemm_cycles(cfg, ins.npix, ins.rows, regs.kernel, regs.in_c, regs.in_w,
                                            regs.w_bits, regs.a_bits), ins


def test_a_gemm_over_the_passes_fails_after_its_div_phase():
    """More passes than ``k_passes``: ``error`` with ``finish`` at the end of the DIV phase."""
    cfg = dataclasses.replace(AccelConfig.resolve("tiny"), k_passes=2)
    regs, ins, slots, before, after = gemm_cases(cfg, _small_net(3, 1, 4, 4, Encoding.SIGNED))[0]
    three = dataclasses.replace(regs, in_c=32)         # rows of 96 terms: 3 passes
    (got, cycles, error), = run_gemms(cfg, [(three, ins, slots, before, before.ljust(len(after), b"\0"))])
    assert error and cycles == (cfg.max_feature_size ** 2).bit_length() + 2


def test_a_gemm_over_the_engines_k_capacity_fails_after_its_div_phase():
    """K_total beyond the tile engine is refused: ``error`` with ``finish`` at the end of the
    DIV phase (one cycle per quotient bit), nothing written."""
    cfg = AccelConfig.resolve("tiny")
    regs, ins, slots, before, after = gemm_cases(cfg, _small_net(3, 1, 4, 4, Encoding.SIGNED))[0]
    too_many = dataclasses.replace(regs, in_c=isa.k_capacity(cfg) // 9 + 1)
    (got, cycles, error), = run_gemms(cfg, [(too_many, ins, slots, before, before.ljust(len(after), b"\0"))])
    assert error
    assert got == before.ljust(len(after), b"\0")
    assert cycles == (cfg.max_feature_size ** 2).bit_length() + 2      # start, DIV, FAIL (finish)
