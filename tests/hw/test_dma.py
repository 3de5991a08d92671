# amaranth: UnusedElaboratable=no
"""The LOAD and STORE DMA engines against the exact AXI4 memory model on Amaranth's simulator:
the bytes moved (and nothing else), the AXI bursts, and the cycles of every transfer against
`bitmill.timing.load_cycles` / `store_cycles`, all by exact equality."""

from __future__ import annotations

import dataclasses
import random

import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from bitmill import timing
from bitmill.config import AccelConfig
from bitmill.hw.axi import AxiSignature, buffer_write_layout
from bitmill.hw.dma import LoadDma, StoreDma
from bitmill.isa import Buffer, slot_bytes
from bitmill.hw.axi_sram import AxiSram

DRAM_BYTES = 20 * 1024          # five 4 KiB pages
MAX_CYCLES = 20_000


def config(b: int, latency: int, base: str = "tiny") -> AccelConfig:
    """A shipped configuration with the memory port of the test and an output slot large
    enough for transfers of more than 256 beats."""
    return dataclasses.replace(AccelConfig.resolve(base), mem_bytes_per_cycle=b,
                               mem_latency=latency, out_buffer_bytes=16384)


@dataclasses.dataclass
class Transfer:
    """One LOAD (``buffer`` not None) or STORE and what the bench saw of it."""
    dram_addr: int
    nbytes: int
    offset: int = 0
    buffer: Buffer | None = None
    slot: int = 0
    limit: int = DRAM_BYTES
    cycles: int = 0
    error: int = 0
    cause: dict | None = None
    bursts: list | None = None      # (cycle after start, addr, len, size, burst)
    busy_ok: bool = True


def _bench_top(dma, cfg: AccelConfig, dram: bytes):
    m = Module()
    m.submodules.dma = dma
    m.submodules.ram = ram = AxiSram(cfg.mem_bytes_per_cycle, cfg.mem_latency,
                                            DRAM_BYTES, dram)
    wiring.connect(m, dma.mem, ram.bus)
    return m, ram


async def _run(ctx, dma, cmd: dict, t: Transfer, ch: str, on_cycle) -> None:
    """Present ``cmd`` (a cycle ahead, as the unit requires), pulse ``start``; watch the
    address channel ``ch`` and ``busy`` until ``finish``; fill ``t``'s observations.
    ``on_cycle`` sees every cycle after the start."""
    bus = dma.mem
    ctx.set(dma.cmd, cmd)
    await ctx.tick()
    ctx.set(dma.start, 1)
    assert not ctx.get(dma.finish) and not ctx.get(dma.busy)
    t.bursts, n = [], 0
    while True:
        if ctx.get(getattr(bus, f"{ch}valid")) and ctx.get(getattr(bus, f"{ch}ready")):
            t.bursts.append((n, *(ctx.get(getattr(bus, f"{ch}{f}"))
                                  for f in ("addr", "len", "size", "burst"))))
        await ctx.tick()
        ctx.set(dma.start, 0)
        n += 1
        assert n < MAX_CYCLES, "no finish"
        t.busy_ok &= bool(ctx.get(dma.busy))
        on_cycle()
        if ctx.get(dma.finish):
            break
    t.cycles, t.error = n + 1, ctx.get(dma.error)
    t.cause = {k: ctx.get(getattr(dma.cause, k)) for k in ("address", "bus", "operand")}
    await ctx.tick()
    t.busy_ok &= not ctx.get(dma.busy) and not ctx.get(dma.finish)


def _slot_words(cfg: AccelConfig, buffer: Buffer) -> int:
    return slot_bytes(cfg, buffer) // cfg.mem_bytes_per_cycle


def run_loads(cfg: AccelConfig, transfers: list[Transfer], seed: int = 0, checked: bool = True):
    """Run ``transfers`` back to back; return the DRAM image and, per transfer, the buffer
    bytes written ({byte address in the buffer: value})."""
    rng = random.Random(seed)
    dram = bytes(rng.randrange(256) for _ in range(DRAM_BYTES))
    dma = LoadDma(cfg, checked)
    top, _ = _bench_top(dma, cfg, dram)
    b, written = cfg.mem_bytes_per_cycle, []

    async def bench(ctx):
        for t in transfers:
            image = {}

            def watch():
                if ctx.get(dma.write.valid):
                    p = ctx.get(dma.write.payload)
                    for i in range(b):
                        if p.en >> i & 1:
                            assert p.addr * b + i not in image, "byte written twice"
                            image[p.addr * b + i] = p.data >> 8 * i & 0xFF
            cmd = {"dram_addr": t.dram_addr, "nbytes": t.nbytes, "offset": t.offset,
                   "base": t.slot * _slot_words(cfg, t.buffer),
                   "slot_bytes": slot_bytes(cfg, t.buffer), "limit": t.limit}
            await _run(ctx, dma, cmd, t, "ar", watch)
            watch()         # the cycle after finish: no write
            written.append(image)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return dram, written


def run_stores(cfg: AccelConfig, transfers: list[Transfer], seed: int = 0, checked: bool = True):
    """Run ``transfers`` back to back; return the initial DRAM image, the output buffer's
    bytes and the final DRAM image."""
    rng = random.Random(seed)
    dram = bytes(rng.randrange(256) for _ in range(DRAM_BYTES))
    dma = StoreDma(cfg, checked)
    b = cfg.mem_bytes_per_cycle
    out = bytes(rng.randrange(256) for _ in range(dma.depth * b))
    top, ram = _bench_top(dma, cfg, dram)
    top.submodules.out = buf = Memory(shape=8 * b, depth=dma.depth, init=[
        int.from_bytes(out[i:i + b], "little") for i in range(0, len(out), b)])
    port = buf.read_port()
    top.d.comb += [port.addr.eq(dma.read_addr), dma.read_data.eq(port.data)]
    final = bytearray()

    async def bench(ctx):
        for t in transfers:
            cmd = {"dram_addr": t.dram_addr, "nbytes": t.nbytes, "limit": t.limit,
                   "base": t.slot * _slot_words(cfg, Buffer.OUT)}
            await _run(ctx, dma, cmd, t, "aw", lambda: None)
        for w in range(ram.words):
            final.extend(ctx.get(ram.memory.data[w]).to_bytes(b, "little"))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return dram, out, bytes(final)


def check_bursts(cfg: AccelConfig, t: Transfer) -> None:
    """One address handshake per cycle from the cycle after start; full-width INCR bursts of
    at most 256 beats, inside 4 KiB pages, each as long as those rules allow, covering
    exactly the transfer's beats."""
    b = cfg.mem_bytes_per_cycle
    addr = t.dram_addr - t.dram_addr % b
    beats = timing.dma_beats(cfg, t.dram_addr, t.nbytes)
    for k, (n, a, length, size, burst) in enumerate(t.bursts):
        assert (n, a, size, burst) == (k + 1, addr, b.bit_length() - 1, 1)
        assert a // 4096 == (a + (length + 1) * b - 1) // 4096
        assert length + 1 == min(beats, 256, (4096 - a % 4096) // b), (t, k)
        addr, beats = addr + (length + 1) * b, beats - (length + 1)
    assert beats == 0


def load_cases(cfg: AccelConfig, rng: random.Random, randoms: int) -> list[Transfer]:
    """Edge cases (alignment on both sides, 1 byte, 4 KiB crossings, more than 256 beats,
    whole slots) and ``randoms`` random transfers."""
    b = cfg.mem_bytes_per_cycle
    p, w = Buffer.PARAM, Buffer.WEIGHT
    big = slot_bytes(cfg, p)
    cases = [Transfer(0, 1, 0, w), Transfer(b - 1, 1, 0, w, 1), Transfer(0, 1, b - 1, w),
             Transfer(5, 1, 2, w), Transfer(b - 1, b + 2, 1, w), Transfer(1, 2 * b, b - 1, w),
             Transfer(3, 3 * b + 1, 3, w, 1), Transfer(4096 - 3, 10, 7, w),
             Transfer(4096 - 2 * b + 1, 5 * b, 0, w), Transfer(8192, 256 * b, 0, p),
             Transfer(4096 * 3 - 256 * b, 256 * b + 1, 0, p, 1),
             Transfer(77, min(big - 5, 260 * b + 9), 5, p, 1),
             Transfer(12, slot_bytes(cfg, w), 0, w, 1),
             Transfer(9, slot_bytes(cfg, w) - 3, 3, w, 0)]
    for _ in range(randoms):
        buf = rng.choice([Buffer.WEIGHT, Buffer.ACT, Buffer.PARAM])
        n = rng.randrange(1, min(slot_bytes(cfg, buf), 3 * b * 64) + 1)
        off = rng.randrange(slot_bytes(cfg, buf) - n + 1)
        cases.append(Transfer(rng.randrange(DRAM_BYTES - n + 1), n, off, buf, rng.randrange(2)))
    return cases


def check_loads(cfg: AccelConfig, cases: list[Transfer], seed: int = 0) -> None:
    dram, written = run_loads(cfg, cases, seed)
    b = cfg.mem_bytes_per_cycle
    for t, image in zip(cases, written):
        start = t.slot * _slot_words(cfg, t.buffer) * b + t.offset
        want = {start + j: dram[t.dram_addr + j] for j in range(t.nbytes)}
        assert image == want, t
        assert t.cycles == timing.load_cycles(cfg, t.dram_addr, t.offset, t.nbytes), t
        assert (t.error, t.busy_ok) == (0, True), t
        check_bursts(cfg, t)


def store_cases(cfg: AccelConfig, rng: random.Random, randoms: int) -> list[Transfer]:
    b = cfg.mem_bytes_per_cycle
    full = slot_bytes(cfg, Buffer.OUT)
    cases = [Transfer(0, 1), Transfer(b - 1, 1, slot=1), Transfer(3, b), Transfer(b - 1, b + 2),
             Transfer(1, 2 * b, slot=1), Transfer(4096 - 3, 10), Transfer(4096 - 2 * b + 1, 5 * b),
             Transfer(8192 + b, min(full, 256 * b)),
             Transfer(4096 * 3 - 256 * b - 1, min(full, 256 * b + 2), slot=1),
             Transfer(3, min(full, 300 * b + 5)), Transfer(16384 - 7, full // 2, slot=1)]
    for _ in range(randoms):
        n = rng.randrange(1, min(full, 3 * b * 64) + 1)
        cases.append(Transfer(rng.randrange(DRAM_BYTES - n + 1), n, slot=rng.randrange(2)))
    return cases


def check_stores(cfg: AccelConfig, cases: list[Transfer], seed: int = 0) -> None:
    dram, out, final = run_stores(cfg, cases, seed)
    want = bytearray(dram)
    slot = slot_bytes(cfg, Buffer.OUT)
    for t in cases:
        want[t.dram_addr:t.dram_addr + t.nbytes] = out[t.slot * slot:t.slot * slot + t.nbytes]
        assert t.cycles == timing.store_cycles(cfg, t.dram_addr, t.nbytes), t
        assert (t.error, t.busy_ok) == (0, True), t
        check_bursts(cfg, t)
    assert final == bytes(want)


@pytest.mark.parametrize("b, latency", [(1, 1), (8, 10), (16, 3)])
def test_load_moves_exact_bytes_in_formula_cycles(b, latency):
    cfg = config(b, latency)
    check_loads(cfg, load_cases(cfg, random.Random(b), 6), seed=b)


@pytest.mark.parametrize("b, latency", [(1, 2), (8, 1), (16, 30)])
def test_store_moves_exact_bytes_in_formula_cycles(b, latency):
    cfg = config(b, latency)
    check_stores(cfg, store_cases(cfg, random.Random(b), 6), seed=b)


def test_shipped_ecp5_85f_memory_port():
    cfg = AccelConfig.resolve("ecp5-85f")
    rng = random.Random(85)
    check_loads(cfg, load_cases(cfg, rng, 3)[:10])
    check_stores(cfg, store_cases(cfg, rng, 3)[:9])


@pytest.mark.slow
@pytest.mark.parametrize("b", [1, 2, 4, 8, 16])
def test_random_sweep(b):
    for latency in (1, 5):
        cfg = config(b, latency)
        check_loads(cfg, load_cases(cfg, random.Random(b * latency), 40), seed=latency)
        check_stores(cfg, store_cases(cfg, random.Random(b + latency), 40), seed=latency)


def _refusals(cfg: AccelConfig, store: bool) -> list[tuple[Transfer, dict]]:
    """(transfer, expected cause) of refused commands, a DECERR transfer past the memory,
    then a good transfer (the engine recovers)."""
    b = cfg.mem_bytes_per_cycle
    w = None if store else Buffer.WEIGHT
    slot = slot_bytes(cfg, Buffer.OUT if store else w)
    none = {"address": 0, "bus": 0, "operand": 0}
    return [(Transfer(0, 0, 0, w), none | {"operand": 1}),
            (Transfer(0, slot + 1, 0, w), none | {"operand": 1}),
            (Transfer(100, 50, 0, w, limit=149), none | {"address": 1}),
            (Transfer(0xFFFF_FFF0, 0x20, 0, w, limit=0xFFFF_FFFF), none | {"address": 1}),
            (Transfer(100, 0, 0, w, limit=50), none | {"operand": 1, "address": 1}),
            (Transfer(DRAM_BYTES - 3, 4 * b, 0, w, limit=2 * DRAM_BYTES), none | {"bus": 1}),
            (Transfer(100, 49, 1, w, limit=149), none)] + (
           [] if store else [(Transfer(0, 2, slot - 1, w), none | {"operand": 1})])


@pytest.mark.parametrize("b", [1, 8])
def test_load_errors_finish_and_flag(b):
    cfg = config(b, 4)
    cases = _refusals(cfg, store=False)
    dram, written = run_loads(cfg, [t for t, _ in cases])
    for (t, cause), image in zip(cases, written):
        assert (t.error, t.cause, t.busy_ok) == (int(any(cause.values())), cause, True), t
        if cause["operand"] or cause["address"]:
            assert (t.cycles, t.bursts, image) == (timing.DMA_ERROR_CYCLES, [], {}), t
        else:
            assert t.cycles == timing.load_cycles(cfg, t.dram_addr, t.offset, t.nbytes), t
    assert written[6] == {1 + j: dram[100 + j] for j in range(49)}


@pytest.mark.parametrize("b", [1, 8])
def test_store_errors_finish_and_flag(b):
    cfg = config(b, 4)
    cases = _refusals(cfg, store=True)
    dram, out, final = run_stores(cfg, [t for t, _ in cases])
    for t, cause in cases:
        assert (t.error, t.cause, t.busy_ok) == (int(any(cause.values())), cause, True), t
        if cause["operand"] or cause["address"]:
            assert (t.cycles, t.bursts) == (timing.DMA_ERROR_CYCLES, []), t
        else:
            assert t.cycles == timing.store_cycles(cfg, t.dram_addr, t.nbytes), t
    want = bytearray(dram)
    want[DRAM_BYTES - 3:] = out[:3]          # the DECERR burst writes the bytes inside memory
    want[100:149] = out[:49]
    assert final == bytes(want)


@pytest.mark.parametrize("b", [1, 8])
def test_unchecked_engines_move_what_a_checked_one_refuses_for_its_address(b):
    """``checked=False`` (the accelerator's engines, whose control checks at preload): a
    transfer past ``limit`` moves its bytes in the formula's cycles; a checked engine refuses
    the same command."""
    cfg = config(b, 4)
    load, store = Transfer(100, 50, 3, Buffer.WEIGHT, limit=149), Transfer(100, 50, limit=149)
    dram, written = run_loads(cfg, [load], checked=False)
    assert (load.error, load.cycles) == (0, timing.load_cycles(cfg, 100, 3, 50))
    assert written[0] == {3 + j: dram[100 + j] for j in range(50)}
    dram, out, final = run_stores(cfg, [store], checked=False)
    assert (store.error, store.cycles) == (0, timing.store_cycles(cfg, 100, 50))
    assert final[100:150] == out[:50]
    refused = Transfer(100, 50, 3, Buffer.WEIGHT, limit=149)
    run_loads(cfg, [refused])
    assert (refused.error, refused.cycles) == (1, timing.DMA_ERROR_CYCLES)


def test_parameters_are_validated():
    with pytest.raises(TypeError, match="checked must be a bool, not int"):
        LoadDma(config(8, 1), 1)
    with pytest.raises(ValueError, match="mem_bytes_per_cycle must be a power of two in 1..16 .*, not 3"):
        LoadDma(config(3, 1))
    with pytest.raises(ValueError, match="mem_bytes_per_cycle must be an integer in 1..16, not 256"):
        StoreDma(config(256, 1))
    with pytest.raises(ValueError, match="data_bytes must be a power of two in 1..128, not 0"):
        AxiSignature(32, 0)
    with pytest.raises(ValueError, match="depth must be a positive integer, not 0"):
        buffer_write_layout(8, 0)


def test_buffer_write_layout():
    lay = buffer_write_layout(16, 5120)
    assert lay.members == {"addr": range(5120), "data": 128, "en": 16}
    assert lay.size == 13 + 128 + 16


def test_verilog_port_names():
    """A master port ``mem`` becomes ``mem__araddr``...: the ``mem_`` prefix of cocotbext-axi
    (``AxiBus.from_prefix(dut, "mem_")`` with separator ``_``)."""
    cfg = config(8, 2)
    text = verilog.convert(LoadDma(cfg), name="load_dma")
    sig = AxiSignature(32, 8, 1)
    for name, member in sig.members.items():
        width = member.shape.width if hasattr(member.shape, "width") else member.shape
        direction = "output" if member.flow == wiring.Out else "input"
        decl = f"{direction} {'' if width == 1 else f'[{width - 1}:0] '}mem__{name};"
        assert decl in text, decl
    assert sig.size == 3 and sig == AxiSignature(32, 8, 1) != AxiSignature(32, 16, 1)
