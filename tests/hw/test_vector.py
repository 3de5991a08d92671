# amaranth: UnusedElaboratable=no
"""The vector unit in Amaranth's simulator with its three buffers as
`amaranth.lib.memory.Memory`s: for random slot contents, the output slot afterwards holds
what `bitmill.sim.functional.MachineState` computes for the same SETUP + VEC (packed with
`bitmill.packing.pack_rows`, every other byte untouched), and every instruction takes
exactly `bitmill.timing.vec_unit_cycles`. Many instructions run back to back in one
simulation (the buffers rewritten between them)."""

from __future__ import annotations

import dataclasses
import itertools
import random

import numpy as np
import pytest
from amaranth import Module, Mux, Signal
from amaranth.lib import memory
from amaranth.sim import Simulator

from bitmill import isa
from bitmill.config import AccelConfig
from bitmill.hw.vector import VectorUnit
from bitmill.isa import Buffer, Load, Setup, Vec, VecKind
from bitmill.numerics import Encoding, value_range
from bitmill.packing import pack_rows, param_records
from bitmill.sim.functional import MachineState
from bitmill.timing import (PACKER_DRAIN, VEC_EMPTY_PIPE, VEC_POOL_FIRST, vec_add_first,
                            vec_unit_cycles)

TINY = AccelConfig.resolve("tiny")
WIDE = dataclasses.replace(TINY, name="tiny-b16", mem_bytes_per_cycle=16)
SIGNED, UNSIGNED, ODD = Encoding.SIGNED, Encoding.UNSIGNED, Encoding.ODD


@dataclasses.dataclass(frozen=True)
class Case:
    """One VEC: the layer registers, the instruction, the activation slot's bytes and the
    byte ranges LOADed into it, the requant records."""

    setup: Setup
    vec: Vec
    act: bytes
    loads: tuple
    params: bytes = b""


def reference(cfg: AccelConfig, case: Case) -> bytes:
    """The output slot's packed rows after the functional model runs the same LOADs,
    SETUP and VEC."""
    state = MachineState(case.act + case.params, cfg)
    for offset, nbytes in case.loads:
        state.apply(Load(Buffer.ACT.value, case.vec.a_slot, offset, nbytes, offset))
    if case.params:
        state.apply(Load(Buffer.PARAM.value, case.vec.p_slot, len(case.act), len(case.params)))
    state.apply(case.setup)
    state.apply(case.vec)
    out, r = state.out[case.vec.o_slot].values, case.setup
    return pack_rows(out.reshape(out.shape[0], -1), r.out_bits, SIGNED if r.out_signed else UNSIGNED)


def body(instr, cfg: AccelConfig, member: str):
    """The body of an encoded instruction as a constant of its layout."""
    lay = isa.layout(cfg)
    shape = lay["body"].shape[member].shape
    return shape.from_bits((isa.encode(instr, cfg) >> lay["body"].offset) & ((1 << shape.size) - 1))


def cycles_of(cfg: AccelConfig, case: Case) -> int:
    r, v = case.setup, case.vec
    return vec_unit_cycles(cfg, v.kind, v.count, r.kernel, r.stride, r.pad, r.in_h, r.in_w,
                           r.in_c, r.out_w, r.out_c, r.a_bits, r.out_bits)


def to_words(blob: bytes, b: int) -> list[int]:
    return [int.from_bytes(blob[i:i + b], "little") for i in range(0, len(blob), b)]


def harness(unit: VectorUnit) -> tuple[Module, dict]:
    """The unit wired to its activation, requant-table and output buffers (synchronous
    non-transparent read ports, byte-enabled write port; the output buffer's read data
    registered once more, as `bitmill.hw.buffers.Buffers` does, and a read that meets a
    write of its word answering that word inverted: the buffer leaves it undefined)."""
    geo, b = unit.geo, unit.geo.data_bytes
    m = Module()
    m.submodules.unit = unit
    mems = {name: memory.Memory(shape=8 * b, depth=depth, init=[])
            for name, depth in (("act", geo.act_depth), ("param", geo.param_depth), ("out", geo.out_depth))}
    for name, mem in mems.items():
        m.submodules[name] = mem
    ports = {name: mem.read_port() for name, mem in mems.items()}
    wr = mems["out"].write_port(granularity=8)
    collided, out_read = Signal(), Signal(8 * b)
    m.d.sync += [collided.eq(wr.en.any() & (wr.addr == ports["out"].addr)),
                 out_read.eq(Mux(collided, ~ports["out"].data, ports["out"].data))]
    m.d.comb += [ports["act"].addr.eq(unit.act_addr), unit.act_data.eq(ports["act"].data),
                 ports["param"].addr.eq(unit.param_addr), unit.param_data.eq(ports["param"].data),
                 ports["out"].addr.eq(unit.out_read_addr), unit.out_read_data.eq(out_read),
                 wr.addr.eq(unit.out_write.payload.addr), wr.data.eq(unit.out_write.payload.data),
                 wr.en.eq(Mux(unit.out_write.valid, unit.out_write.payload.en, 0))]
    return m, mems


async def execute(ctx, unit: VectorUnit, regs, instr) -> dict:
    """Start one instruction and wait for its finish (the packer never stalls, the
    operand queues never run dry); returns ``cycles``, ``error``, ``busy``, ``written``."""
    ctx.set(unit.regs, regs)
    ctx.set(unit.instr, instr)
    ctx.set(unit.start, 1)
    cycle, busy, written = 0, [], []
    while not ctx.get(unit.finish):
        assert not ctx.get(unit.stalled) and not ctx.get(unit.starved), cycle
        written += [cycle] if ctx.get(unit.out_write.valid) else []
        await ctx.tick()
        ctx.set(unit.start, 0)
        cycle += 1
        busy += [cycle] if ctx.get(unit.busy) else []
        assert cycle < 100_000
    error = ctx.get(unit.error)
    written += [cycle] if ctx.get(unit.out_write.valid) else []
    await ctx.tick()
    assert not ctx.get(unit.out_write.valid)
    assert not ctx.get(unit.busy) and not ctx.get(unit.finish)
    return {"cycles": cycle + 1, "error": error, "busy": busy, "written": written}


def simulate(cfg: AccelConfig, cases: list[Case], seed: int = 0) -> list[dict]:
    """Run the cases back to back (each starts in the cycle after the previous finish).
    Per case: ``cycles`` (finish + 1 - start), ``error``, ``busy`` and ``written`` (cycles
    with ``busy``, with a write; the start is cycle 0), ``out`` (the whole output buffer)
    and ``out_before``."""
    unit = VectorUnit(cfg)
    geo, b = unit.geo, unit.geo.data_bytes
    rng = random.Random(seed)
    m, mems = harness(unit)
    results = []

    def fill(ctx, mem, first_word: int, blob: bytes):
        for i, w in enumerate(to_words(blob, b)):
            ctx.set(mem.data[first_word + i], w)

    def read_out(ctx) -> bytes:
        return b"".join(ctx.get(mems["out"].data[i]).to_bytes(b, "little") for i in range(geo.out_depth))

    async def bench(ctx):
        for case in cases:
            v = case.vec
            slot = case.act + bytes(rng.getrandbits(8) for _ in range(geo.act_slot_bytes - len(case.act)))
            fill(ctx, mems["act"], v.a_slot * geo.act_slot_words, slot)
            fill(ctx, mems["param"], v.p_slot * geo.param_slot_words,
                 case.params + bytes(-len(case.params) % b))
            fill(ctx, mems["out"], 0, bytes(rng.getrandbits(8) for _ in range(geo.out_depth * b)))
            before = read_out(ctx)
            got = await execute(ctx, unit, body(case.setup, cfg, "setup"), body(v, cfg, "vec"))
            results.append(got | {"out": read_out(ctx), "out_before": before})

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def check(cfg: AccelConfig, cases: list[Case], seed: int = 0) -> None:
    """Every case: output bytes as the functional model's, the rest of the output buffer
    untouched, no error, cycles as the formula, ``busy`` in cycles 1 .. end-1, the last
    write in the finish cycle (B >= 4; no later for B = 1, 2)."""
    slot_bytes = isa.slot_bytes(cfg, Buffer.OUT)
    for case, got in zip(cases, simulate(cfg, cases, seed)):
        ref = reference(cfg, case)
        start = case.vec.o_slot * slot_bytes
        expected = got["out_before"][:start] + ref + got["out_before"][start + len(ref):]
        assert got["out"] == expected, case
        assert got["error"] == 0, case
        assert got["cycles"] == cycles_of(cfg, case), case
        assert got["busy"] == list(range(1, got["cycles"])), case
        if cfg.mem_bytes_per_cycle >= 4:
            assert got["written"][-1] == got["cycles"] - 1, case
        assert got["written"][-1] <= got["cycles"] - 1, case


# ---- case builders -------------------------------------------------------------------------

def values(rng: np.random.Generator, shape, bits: int, enc: Encoding) -> np.ndarray:
    lo, hi = value_range(bits, enc)
    v = rng.integers(lo, hi, size=shape, endpoint=True)
    return v | 1 if enc is ODD else v


def add_case(cfg, rng, a=(4, SIGNED), b=(4, SIGNED), out=(8, True, False), rows=2, w=3, c=2,
             slots=(0, 0, 0), extra=0) -> Case:
    """ADD of two ``rows x (w*c)`` operands; ``extra`` codes of ``count`` beyond whole rows."""
    half = isa.slot_bytes(cfg, Buffer.ACT) // 2
    pa = pack_rows(values(rng, (rows, w * c), *a), *a)
    pb = pack_rows(values(rng, (rows, w * c), *b), *b)
    act = pa + bytes(half - len(pa)) + pb
    params = param_records(rng.integers(-(1 << 15), 1 << 15, 2), [int(rng.integers(0, 16)), 0],
                           [int(rng.integers(-(1 << 20), 1 << 20)), 0])
    setup = Setup(1, 1, 0, rows, w, c, w, c, 0, 0, a[0], a[0], a[1], a[1], *out)
    vec = Vec(VecKind.ADD.value, slots[0], rows * w * c + extra, slots[2], slots[1], b[0], b[1])
    return Case(setup, vec, act, ((0, len(pa)), (half, len(pb))), params)


def maxpool_case(cfg, rng, k, s, p, in_h, in_w, c, a=(4, UNSIGNED), out=(4, False, False),
                 out_row0=0, rows=1, slots=(0, 0)) -> Case:
    """MAXPOOL of output rows ``out_row0 ..`` from the band of input rows they read."""
    out_w = (in_w + 2 * p - k) // s + 1
    lo, hi = max(0, out_row0 * s - p), min(in_h, (out_row0 + rows - 1) * s - p + k)
    blob = pack_rows(values(rng, (hi - lo, in_w * c), *a), *a)
    setup = Setup(k, s, p, in_h, in_w, c, out_w, c, lo, out_row0, a[0], a[0], a[1], a[1], *out)
    vec = Vec(VecKind.MAXPOOL.value, slots[0], rows * out_w * c, 0, slots[1])
    return Case(setup, vec, blob, ((0, len(blob)),))


def avgpool_case(cfg, rng, in_h, in_w, c, a=(8, UNSIGNED), out=(8, True, False), slots=(0, 0, 0)) -> Case:
    """AVGPOOL of a whole ``in_h x in_w x c`` input with random requant records."""
    blob = pack_rows(values(rng, (in_h, in_w * c), *a), *a)
    params = param_records(rng.integers(-(1 << 15), 1 << 15, c), rng.integers(0, 24, c),
                           rng.integers(-(1 << 24), 1 << 24, c))
    setup = Setup(1, 1, 0, in_h, in_w, c, 1, c, 0, 0, a[0], a[0], a[1], a[1], *out)
    vec = Vec(VecKind.AVGPOOL.value, slots[0], c, slots[2], slots[1])
    return Case(setup, vec, blob, ((0, len(blob)),), params)


# ---- tests ---------------------------------------------------------------------------------

def add_grid(cfg, seed: int, full: bool) -> list[Case]:
    """Every (a_bits, b_bits) in 1..8 x 1..8, encodings, out bits 1..8 and relu rotating
    through them (``full``: every combination of all of them)."""
    rng, cases = np.random.default_rng(seed), []
    encs = list(itertools.product((SIGNED, UNSIGNED), (SIGNED, UNSIGNED, ODD)))
    outs = list(itertools.product(range(1, 9), (True, False), (False, True)))
    combos = (itertools.product(range(1, 9), range(1, 9), encs, outs) if full else
              ((ab, bb, encs[i % len(encs)], outs[(7 * i) % len(outs)])
               for i, (ab, bb) in enumerate(itertools.product(range(1, 9), range(1, 9)))))
    for i, (ab, bb, (ae, be), out) in enumerate(combos):
        cases.append(add_case(cfg, rng, (ab, ae), (bb, be), out, rows=1 + i % 2, w=1 + i % 3,
                              c=1 + (i // 3) % 3, slots=(i % 2, (i // 2) % 2, (i // 4) % 2),
                              extra=(i % 3) % ((1 + i % 3) * (1 + (i // 3) % 3))))
    return cases


def test_add_every_bit_width_pair_tiny():
    check(TINY, add_grid(TINY, 1, full=False))


def test_add_b16_and_wide_outputs():
    rng = np.random.default_rng(2)
    cases = [add_case(WIDE, rng, (a, SIGNED), (b, ODD), (ob, True, relu), rows=2, w=5, c=3)
             for a, b, ob, relu in ((8, 8, 8, False), (3, 7, 13, True), (5, 2, 32, False),
                                    (1, 1, 1, False), (6, 8, 24, True))]
    check(WIDE, cases)


def test_add_long_rows_one_element_per_cycle():
    """Rows longer than the queues, odd widths: one element per cycle throughout."""
    rng = np.random.default_rng(3)
    cases = [add_case(TINY, rng, (7, SIGNED), (5, UNSIGNED), (7, True, False), rows=3, w=9, c=7),
             add_case(TINY, rng, (8, UNSIGNED), (8, SIGNED), (8, False, True), rows=2, w=16, c=5)]
    check(TINY, cases)


@pytest.mark.parametrize("cfg", [TINY, WIDE], ids=["b8", "b16"])
def test_maxpool_bands(cfg):
    """2x2/2 pad 0 and 3x3/2 pad 1 on bands not starting at row 0 (top padding at row 0
    too), code widths that straddle words, outputs narrower and wider than the input."""
    rng = np.random.default_rng(4)
    cases = [maxpool_case(cfg, rng, 2, 2, 0, 8, 8, 3, (4, UNSIGNED), (4, False, False), out_row0=1, rows=2),
             maxpool_case(cfg, rng, 2, 2, 0, 6, 6, 2, (3, SIGNED), (6, True, False), out_row0=2, rows=1, slots=(1, 1)),
             maxpool_case(cfg, rng, 3, 2, 1, 7, 7, 2, (5, SIGNED), (5, True, False), out_row0=1, rows=2),
             maxpool_case(cfg, rng, 3, 2, 1, 8, 6, 3, (8, SIGNED), (3, True, False), out_row0=0, rows=2, slots=(0, 1)),
             maxpool_case(cfg, rng, 3, 2, 1, 5, 5, 1, (2, UNSIGNED), (8, False, False), out_row0=2, rows=1),
             maxpool_case(cfg, rng, 3, 1, 1, 4, 4, 2, (7, ODD), (8, True, False), out_row0=1, rows=2)]
    check(cfg, cases)


@pytest.mark.parametrize("cfg", [TINY, WIDE], ids=["b8", "b16"])
def test_avgpool(cfg):
    rng = np.random.default_rng(5)
    cases = [avgpool_case(cfg, rng, 4, 4, 5, (8, UNSIGNED), (8, True, False)),
             avgpool_case(cfg, rng, 3, 2, 3, (3, SIGNED), (6, False, False), slots=(1, 1, 1)),
             avgpool_case(cfg, rng, 1, 1, 9, (5, UNSIGNED), (16, True, True))]
    check(cfg, cases)


@pytest.mark.parametrize("b", [1, 2, 4])
def test_narrow_buffer_words(b):
    """B = 1, 2, 4: ADD at its period (two operand words per element for B = 1), codes up
    to 32 bits paced for the packer, pools with straddling codes."""
    cfg = dataclasses.replace(TINY, name=f"tiny-b{b}", mem_bytes_per_cycle=b)
    rng = np.random.default_rng(6 + b)
    cases = [add_case(cfg, rng, (8, SIGNED), (8, UNSIGNED), (32, True, False), rows=2, w=3, c=3),
             add_case(cfg, rng, (7, SIGNED), (3, SIGNED), (12, True, False), rows=3, w=1, c=3),
             add_case(cfg, rng, (1, UNSIGNED), (1, UNSIGNED), (3, False, False), rows=3, w=1, c=1),
             maxpool_case(cfg, rng, 1, 1, 0, 2, 3, 2, (6, SIGNED), (32, True, False), rows=2),
             maxpool_case(cfg, rng, 3, 2, 1, 5, 5, 2, (5, UNSIGNED), (5, False, False), out_row0=1, rows=2),
             avgpool_case(cfg, rng, 2, 2, 3, (7, SIGNED), (20, True, False))]
    check(cfg, cases)


def random_case(cfg: AccelConfig, rng: np.random.Generator) -> Case:
    """A random ADD, MAXPOOL (kernel 1-3, stride 1-3, pad below the kernel, a random band)
    or AVGPOOL, any code width and encoding, outputs of 1..8 bits or up to 32."""
    pick = lambda seq: seq[int(rng.integers(len(seq)))]                       # noqa: E731
    bits = lambda: int(rng.integers(1, 9))                                      # noqa: E731
    a = (bits(), pick((SIGNED, UNSIGNED, SIGNED, UNSIGNED, ODD)))
    out = (int(rng.integers(1, 33)) if rng.random() < 0.3 else bits(), bool(rng.random() < 0.5),
           bool(rng.random() < 0.3))
    slots = tuple(int(x) for x in rng.integers(0, 2, 3))
    kind = int(rng.integers(3))
    if kind == 0:
        return add_case(cfg, rng, a, (bits(), pick((SIGNED, UNSIGNED, ODD))), out,
                        rows=int(rng.integers(1, 4)), w=int(rng.integers(1, 6)),
                        c=int(rng.integers(1, 5)), slots=slots)
    if kind == 1:
        k, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        p = int(rng.integers(0, k))
        in_h, in_w = int(rng.integers(k, 9)), int(rng.integers(k, 9))
        out_h = (in_h + 2 * p - k) // s + 1
        row0 = int(rng.integers(0, out_h))
        return maxpool_case(cfg, rng, k, s, p, in_h, in_w, int(rng.integers(1, 5)), a, out,
                            out_row0=row0, rows=int(rng.integers(1, out_h - row0 + 1)), slots=slots[:2])
    return avgpool_case(cfg, rng, int(rng.integers(1, 5)), int(rng.integers(1, 5)),
                        int(rng.integers(1, 7)), a, out, slots=slots)


@pytest.mark.parametrize("cfg", [TINY, WIDE], ids=["b8", "b16"])
def test_random_mix_back_to_back(cfg):
    """Random instructions of all three kinds, each started in the cycle after the
    previous one's finish."""
    rng = np.random.default_rng(20 + cfg.mem_bytes_per_cycle)
    check(cfg, [random_case(cfg, rng) for _ in range(24)], seed=cfg.mem_bytes_per_cycle)


def test_no_elements():
    """``count`` below one row writes nothing, raises no error, takes the empty formula."""
    rng = np.random.default_rng(8)
    cases = [dataclasses.replace(c, vec=dataclasses.replace(c.vec, count=c.vec.count // 3))
             for c in (add_case(TINY, rng, rows=1, w=3, c=2),
                       maxpool_case(TINY, rng, 2, 2, 0, 4, 4, 3, rows=1))]
    for case, got in zip(cases, simulate(TINY, cases)):
        assert got["out"] == got["out_before"] and got["error"] == 0
        first = vec_add_first(TINY) if case.vec.kind == 0 else VEC_POOL_FIRST
        assert got["cycles"] == cycles_of(TINY, case) == first + VEC_EMPTY_PIPE + PACKER_DRAIN + 1


def test_errors_finish_with_error():
    """Fields the unit cannot execute: finish with ``error`` at the formula's cycle."""
    rng = np.random.default_rng(9)
    half = isa.slot_bytes(TINY, Buffer.ACT) // 2
    add = add_case(TINY, rng, (8, SIGNED), (8, SIGNED), rows=1, w=4, c=2)
    pool = maxpool_case(TINY, rng, 3, 2, 1, 7, 7, 2, out_row0=1, rows=2)
    avg = avgpool_case(TINY, rng, 2, 2, 3)
    cases = [
        dataclasses.replace(add, vec=dataclasses.replace(add.vec, count=(half // 8 + 1) * 8)),   # A past its half
        dataclasses.replace(add, setup=dataclasses.replace(add.setup, in_c=3)),                 # shapes differ
        dataclasses.replace(pool, setup=dataclasses.replace(pool.setup, band_row0=2)),          # rows above the band
        dataclasses.replace(pool, setup=dataclasses.replace(pool.setup, out_c=1)),              # in_c != out_c
        dataclasses.replace(pool, setup=dataclasses.replace(pool.setup, in_w=2000)),            # taps past the
        dataclasses.replace(pool, setup=dataclasses.replace(pool.setup, in_w=2000),             # slot (0, then 1)
                            vec=dataclasses.replace(pool.vec, a_slot=1)),
        dataclasses.replace(avg, setup=dataclasses.replace(avg.setup, out_w=2)),                # AVGPOOL out_w != 1
        dataclasses.replace(add, setup=dataclasses.replace(add.setup, out_bits=32),             # past the out slot
                            vec=dataclasses.replace(add.vec, count=8 * (half // 8))),
        dataclasses.replace(add, setup=dataclasses.replace(add.setup, out_bits=19),             # only the last
                            vec=dataclasses.replace(add.vec, count=216)),                       # code past it
    ]
    for case, got in zip(cases, simulate(TINY, cases)):
        assert got["error"] == 1, case
        assert got["cycles"] == cycles_of(TINY, case), case


def test_cycle_formula():
    """The formula's parts on hand-checked values (tiny: B = 8)."""
    assert vec_unit_cycles(TINY, 0, 36, 1, 1, 0, 3, 4, 3, 4, 3, 3, 6) == 10 + 35 + 4 + 10 + 7 + 1
    assert vec_unit_cycles(TINY, 1, 2 * 3 * 3, 2, 2, 0, 8, 6, 3, 3, 3, 4, 4) == 5 + 17 * 4 + 3 + 4 + 7 + 1
    assert vec_unit_cycles(TINY, 1, 9, 3, 2, 1, 7, 7, 3, 3, 3, 3, 4) == 5 + 8 * 18 + 8 * 2 + 1 + 4 + 7 + 1
    assert vec_unit_cycles(TINY, 2, 4, 1, 1, 0, 2, 3, 4, 1, 4, 8, 8) == 5 + 3 * 9 + 2 + 6 + 4 + 10 + 7 + 1
    assert vec_unit_cycles(TINY, 3, 4, 1, 1, 0, 2, 3, 4, 1, 4, 8, 8) == 5 + 1 + 7 + 1


def test_rejects_bad_configs():
    with pytest.raises(TypeError, match="cfg must be an AccelConfig"):
        VectorUnit("tiny")
    odd = dataclasses.replace(TINY, name="odd", out_buffer_bytes=1000)
    with pytest.raises(ValueError, match="must be a positive multiple of mem_bytes_per_cycle"):
        VectorUnit(odd)


@pytest.mark.slow
@pytest.mark.parametrize("b", [1, 2, 4, 8, 16])
def test_random_mix_every_word_width(b):
    cfg = dataclasses.replace(TINY, name=f"tiny-b{b}", mem_bytes_per_cycle=b)
    rng = np.random.default_rng(40 + b)
    check(cfg, [random_case(cfg, rng) for _ in range(150)], seed=b)


@pytest.mark.slow
def test_add_every_combination():
    """Every a_bits x b_bits x encodings x out_bits x relu (4608 ADDs)."""
    check(TINY, add_grid(TINY, 11, full=True))
