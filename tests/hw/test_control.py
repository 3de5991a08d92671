"""The control unit runs a program's queues and tokens cycle for cycle as `sim/cycle.py` models
them: every instruction's start and end cycle, the cycle counter and the busy counters, with
units that take the model's cycles; and every error stops the program (never a hang)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from amaranth.sim import Simulator

from bitmill import isa, timing
from bitmill.compiler import zoo
from bitmill.compiler.pipeline import compile_net
from bitmill.config import AccelConfig
from bitmill.hw.control import Control
from bitmill.hw.regmap import ErrorFlag
from bitmill.isa import Buffer, Deps, Gemm, Load, Program, Queue, Setup, Store, Sync, QUEUE_OF
from bitmill.numerics import Encoding
from bitmill.sim import cycle

TINY = AccelConfig.resolve("tiny")
UNITS = ("load", "store", "gemm", "vec")


@dataclass
class Run:
    """What the bench saw: start/end per program index, registers at the end."""
    start: dict = field(default_factory=dict)
    end: dict = field(default_factory=dict)
    cycles: int = 0
    done: bool = False
    error_flags: int = 0
    error_instr: int = 0
    retired: int = 0
    restarted: tuple = ()
    queue_busy: tuple = ()
    ticks: int = 0


def _words(program: Program) -> list[int]:
    """The program's binary words (REFILL words between its fills)."""
    blob = program.encoded()
    return [int.from_bytes(blob[i:i + 16], "little") for i in range(0, len(blob), 16)]


def run_control(cfg: AccelConfig, words: list[int], lat: list[int], mem_bytes: int = 1 << 20,
                unit_error: int | None = None, limit: int = 200_000, prog_count: int | None = None,
                restart: bool = False) -> Run:
    """Simulate `Control` on the program ``words`` (fetched from address 0 by an exact-latency
    memory; PROG_COUNT ``prog_count``, default every word) with units that take ``lat[index]``
    cycles; ``unit_error``: the program index whose unit reports an error (REFILL words have
    no program index); ``restart``: then START an empty program (``Run.restarted``: its DONE,
    RETIRED and CYCLES)."""
    dut = Control(cfg)
    bb, L = cfg.mem_bytes_per_cycle, cfg.mem_latency
    image = b"".join(w.to_bytes(16, "little") for w in words)
    ops = [w & 7 for w in words]
    unit_ops = {isa.Opcode.LOAD.value: 0, isa.Opcode.GEMM.value: 1, isa.Opcode.VEC.value: 1,
                isa.Opcode.STORE.value: 2}
    index = {}
    for pos, op in enumerate(ops):
        if op != isa.Opcode.REFILL.value:
            index[pos] = len(index)
    per_queue = [[index[pos] for pos, op in enumerate(ops) if unit_ops.get(op) == q] for q in range(3)]
    unit_queue = {"load": 0, "store": 2, "gemm": 1, "vec": 1}
    run = Run()

    async def bench(ctx):
        ctx.set(dut.mem_bytes, mem_bytes)
        ctx.set(dut.prog_addr, 0)
        ctx.set(dut.prog_count, len(words) if prog_count is None else prog_count)
        await ctx.tick()                  # the program registers hold from the cycle before START
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        beats, t = [], 0          # (cycle valid from, beat address)
        taken = [0, 0, 0]
        busy_until = {u: None for u in UNITS}         # end cycle of the unit's instruction
        for t in range(limit):
            ready_beat = beats and beats[0][0] <= t
            if ready_beat:
                _, addr = beats.pop(0)
                ctx.set(dut.fetch.rvalid, 1)
                ctx.set(dut.fetch.rdata, int.from_bytes(image[addr:addr + bb], "little"))
                ctx.set(dut.fetch.rresp, 0)
            else:
                ctx.set(dut.fetch.rvalid, 0)
            ctx.set(dut.fetch.arready, 1)
            for u in UNITS:
                unit = getattr(dut, u)
                end = busy_until[u]
                ctx.set(unit.busy, end is not None and run.start[_cur[u]] < t < end)
                ctx.set(unit.finish, end is not None and t == end - 1)
                ctx.set(unit.error, end is not None and t == end - 1 and _cur[u] == unit_error)
                if end is not None and t >= end:
                    busy_until[u] = None
            if ctx.get(dut.fetch.arvalid):
                a, n = ctx.get(dut.fetch.araddr), ctx.get(dut.fetch.arlen) + 1
                first = max(t + L, beats[-1][0] + 1 if beats else 0)
                beats += [(first + k, a + k * bb) for k in range(n)]
            for u in UNITS:
                unit = getattr(dut, u)
                if ctx.get(unit.start):
                    q = unit_queue[u]
                    idx = per_queue[q][taken[q]]
                    taken[q] += 1
                    _cur[u] = idx
                    run.start[idx] = t
                    run.end[idx] = t + lat[idx]
                    busy_until[u] = t + lat[idx]
                    if lat[idx] == 1:
                        ctx.set(unit.finish, 1)
                        ctx.set(unit.error, idx == unit_error)
            await ctx.tick()
            if ctx.get(dut.done):
                break
        run.ticks = t
        run.done = bool(ctx.get(dut.done))
        run.cycles = ctx.get(dut.cycles)
        run.error_flags = ctx.get(dut.error_flags)
        run.error_instr = ctx.get(dut.error_instr)
        run.retired = ctx.get(dut.retired)
        run.queue_busy = tuple(ctx.get(dut.queue_busy[q]) for q in range(3))
        if restart:
            ctx.set(dut.prog_count, 0)
            await ctx.tick()
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            await ctx.tick()
            run.restarted = (bool(ctx.get(dut.done)), ctx.get(dut.retired), ctx.get(dut.cycles))

    _cur = {u: None for u in UNITS}
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return run


@pytest.fixture(scope="module")
def resnet8_program():
    g = zoo.build("resnet8", zoo.BitSpec(4, 4, first_last_bits=8))
    return compile_net(g, AccelConfig.resolve("sim-4x4-k16")).program     # holds every layer


def _short_latencies(program: Program) -> np.ndarray:
    """Latencies of 1..7 cycles (SETUP and SYNC: 1) so the whole program simulates quickly."""
    rng = np.random.default_rng(5)
    lat = rng.integers(2, 8, len(program.instructions))
    for i, ins in enumerate(program.instructions):
        if isinstance(ins, (Setup, Sync)):
            lat[i] = timing.SETUP_CYCLES
    return lat


def test_resnet8_program_runs_cycle_for_cycle_as_the_model(resnet8_program):
    prog = resnet8_program
    lat = _short_latencies(prog)
    start, end, _, _ = cycle.run_queues(prog, lat=lat)
    run = run_control(prog.config, _words(prog), lat.tolist(), restart=True)
    assert run.done and run.error_flags == 0
    assert run.restarted == (True, 0, 0)         # a later START clears RETIRED and CYCLES
    units = [i for i, ins in enumerate(prog.instructions) if not isinstance(ins, (Setup, Sync))]
    assert {i: run.start[i] for i in units} == {i: int(start[i]) for i in units}
    assert {i: run.end[i] for i in units} == {i: int(end[i]) for i in units}
    assert run.cycles == int(end.max())
    assert run.retired == len(prog.instructions)
    queue = np.array([QUEUE_OF[i.opcode].value for i in prog.instructions])
    assert run.queue_busy == tuple(int(lat[queue == q].sum()) for q in range(3))
    assert int(start.min()) == timing.preload_cycles(prog.config, len(prog.instructions))


@pytest.mark.parametrize("depth", [40, 97])
def test_a_program_in_fills_runs_cycle_for_cycle_as_the_model(resnet8_program, depth):
    """ResNet-8's program split into fills of at most ``depth`` instructions per queue: each
    fill preloads after the previous one's last instruction ended, tokens carry over."""
    prog = replace(resnet8_program, config=replace(resnet8_program.config, queue_depth=depth)).split_into_fills()
    assert len(prog.fills) >= 2
    lat = _short_latencies(prog)
    start, end, _, _ = cycle.run_queues(prog, lat=lat)
    run = run_control(prog.config, _words(prog), lat.tolist(), prog_count=prog.fill_words()[0])
    assert run.done and run.error_flags == 0, ErrorFlag(run.error_flags)
    units = [i for i, ins in enumerate(prog.instructions) if not isinstance(ins, (Setup, Sync))]
    assert {i: run.start[i] for i in units} == {i: int(start[i]) for i in units}
    assert {i: run.end[i] for i in units} == {i: int(end[i]) for i in units}
    assert run.cycles == int(end.max()) and run.retired == len(prog.instructions)
    second = prog.fill_ranges()[1]
    assert int(start[second].min()) >= int(end[prog.fill_ranges()[0]].max()) + 1 + timing.preload_cycles(
        prog.config, prog.fill_words()[1])


def _refill_program(cfg, words_after: int, at: int = 1) -> list[int]:
    """Two loads, a REFILL of ``words_after`` words after load ``at``, one more load."""
    load = isa.encode(Load(Buffer.ACT.value, 0, 0, 16), cfg)
    words = [load, load, load]
    refill = isa.layout(cfg).const({"opcode": isa.Opcode.REFILL, "body": {"refill": {"words": words_after}}})
    words.insert(at, refill.as_value().value)       # unchecked: a count beyond the field's range too
    return words


@pytest.mark.parametrize("case, flag, index", [
    ("refill not last", ErrorFlag.ILLEGAL_OPCODE, 1),
    ("refill of nothing", ErrorFlag.ILLEGAL_OPCODE, 1),
    ("refill too long", ErrorFlag.PROGRAM_TOO_LONG, 1),
    ("refill beyond memory", ErrorFlag.ADDRESS, 1),
])
def test_a_bad_refill_raises_its_error_and_stops(case, flag, index):
    cfg = replace(TINY, queue_depth=4)
    words, count, mem = {
        "refill not last": (_refill_program(cfg, 2, at=1), 4, 1 << 20),
        "refill of nothing": (_refill_program(cfg, 0, at=1), 2, 1 << 20),
        "refill too long": (_refill_program(cfg, 13, at=1), 2, 1 << 20),
        "refill beyond memory": (_refill_program(cfg, 2, at=1), 2, 3 * 16),
    }[case]
    run = run_control(cfg, words, [3] * 4, mem_bytes=mem, prog_count=count, limit=2000)
    assert run.done, f"{case}: the program did not stop"
    assert run.error_flags == flag, f"{case}: {ErrorFlag(run.error_flags)!r}"
    assert run.error_instr == index


def _program(cfg, instrs) -> list[int]:
    return _words(Program(tuple(instrs), b"", cfg))


SETUP = Setup(kernel=1, stride=1, pad=0, in_h=1, in_w=1, in_c=8, out_w=1, out_c=2, band_row0=0,
              out_row0=0, w_bits=4, a_bits=4, w_enc=Encoding.SIGNED, a_enc=Encoding.UNSIGNED,
              out_bits=8, out_signed=True, relu=False)


def test_a_token_orders_queues_and_ends_the_program():
    instrs = [Load(Buffer.ACT.value, 0, 0, 16, deps=Deps(push_next=True)),
              SETUP, Gemm(0, 0, 0, 0, 2, 0, 1, deps=Deps(pop_prev=True, push_next=True)),
              Store(0, 64, 2, deps=Deps(pop_prev=True))]
    lat = [9, 1, 5, 4]
    prog = Program(tuple(instrs), b"", TINY)
    start, end, _, _ = cycle.run_queues(prog, lat=np.array(lat))
    run = run_control(TINY, _words(prog), lat)
    assert [run.start[i] for i in (0, 2, 3)] == [int(start[i]) for i in (0, 2, 3)]
    assert run.cycles == int(end.max()) and run.error_flags == 0


@pytest.mark.parametrize("case, flag, index", [
    ("illegal opcode", ErrorFlag.ILLEGAL_OPCODE, 1),
    ("flag the queue lacks", ErrorFlag.BAD_FLAGS, 1),
    ("deadlock", ErrorFlag.DEADLOCK, 1),
    ("load outside memory", ErrorFlag.ADDRESS, 1),
    ("store outside its slot", ErrorFlag.OPERAND, 2),
    ("unit error", ErrorFlag.BUS, 0),
])
def test_a_bad_program_raises_its_error_and_stops(case, flag, index):
    cfg = TINY
    load = Load(Buffer.ACT.value, 0, 0, 16)
    words = {
        "illegal opcode": _program(cfg, [load]) + [7],
        "flag the queue lacks": _program(cfg, [load, Load(Buffer.ACT.value, 0, 0, 16, deps=Deps(pop_prev=True))]),
        "deadlock": _program(cfg, [load, SETUP.__class__(**{**SETUP.__dict__, "deps": Deps(pop_prev=True)})]),
        "load outside memory": _program(cfg, [load, Load(Buffer.ACT.value, 1, (1 << 20) - 8, 16)]),
        "store outside its slot": _program(cfg, [load, SETUP, Store(0, 0, isa.slot_bytes(cfg, Buffer.OUT) + 1)]),
        "unit error": _program(cfg, [load, SETUP]),
    }[case]
    run = run_control(cfg, words, [6] * len(words), unit_error=0 if case == "unit error" else None,
                      limit=2000)
    assert run.done, f"{case}: the program did not stop"
    assert run.error_flags == flag, f"{case}: {ErrorFlag(run.error_flags)!r}"
    assert run.error_instr == index


def test_a_program_longer_than_a_queue_memory_is_refused():
    cfg = replace(TINY, queue_depth=4)
    words = _program(cfg, [Load(Buffer.ACT.value, 0, 0, 16)] * 5)
    run = run_control(cfg, words, [3] * 5, limit=2000)
    assert run.done and run.error_flags == ErrorFlag.PROGRAM_TOO_LONG and run.error_instr == 4


def test_a_token_counter_overflow_is_an_error():
    push = Sync(deps=Deps(push_next=True))
    words = _program(TINY, [push] * 256)
    run = run_control(TINY, words, [1] * 256, limit=20_000)
    assert run.done and run.error_flags == ErrorFlag.TOKEN_OVERFLOW
