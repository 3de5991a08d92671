# amaranth: UnusedElaboratable=no
"""The exact AXI4 memory model: read beats ``L`` cycles after the AR handshake, bursts back to
back in order, B responses ``L`` cycles after the last W beat, DECERR outside the memory, and
the backdoor helpers, against a reference schedule by exact equality."""

from __future__ import annotations

import random

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from bitmill.hw.axi_sram import SRAM_MODULE, SRAM_VERILOG, AxiSram
from bitmill.sim.cosim.axi_memory import load_bytes, read_bytes

B = 4
DEPTH = 1024


def _image(seed: int = 0) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(DEPTH))


def _simulate(model: AxiSram, bench) -> None:
    sim = Simulator(model)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def read_schedule(bursts, latency: int, image: bytes):
    """(cycle, data, last, resp) of every beat, ``rready`` always 1: a burst's first beat at
    ``max(a + L, previous last beat + 1)``."""
    out, free = [], 0
    for a, addr, length in bursts:
        c = max(a + latency, free)
        for k in range(length + 1):
            word = addr // B + k
            inside = word < DEPTH // B
            data = int.from_bytes(image[word * B:word * B + B], "little") if inside else 0
            out.append((c + k, data, int(k == length), 0 if inside else 3))
        free = c + length + 1
    return out


# (AR cycle, byte address, len): back to back, a late one, one running past the memory
READ_BURSTS = [(0, 0, 3), (1, 64, 0), (2, 128, 1), (3, 12, 2), (30, 8, 0), (31, DEPTH - 8, 3)]


def read_bench(bus, bursts, got: list, cycles: int = 60):
    """A master taking every beat: each AR in its cycle; (cycle, data, last, resp) of every
    beat into ``got``."""
    async def bench(ctx):
        ctx.set(bus.rready, 1)
        pending = list(bursts)
        for c in range(cycles):
            ar = pending[0] if pending and pending[0][0] == c else None
            ctx.set(bus.arvalid, ar is not None)
            if ar:
                ctx.set(bus.araddr, ar[1])
                ctx.set(bus.arlen, ar[2])
                assert ctx.get(bus.arready)
                pending.pop(0)
            if ctx.get(bus.rvalid):
                got.append((c, ctx.get(bus.rdata), ctx.get(bus.rlast), ctx.get(bus.rresp)))
            await ctx.tick()
    return bench


@pytest.mark.parametrize("latency", [1, 2, 3, 4, 7])
def test_read_beats_follow_the_schedule(latency):
    image = _image(latency)
    model = AxiSram(B, latency, DEPTH, image)
    got = []
    _simulate(model, read_bench(model.bus, READ_BURSTS, got))
    assert got == read_schedule(READ_BURSTS, latency, image)


@pytest.mark.parametrize("latency, read_latency", [(4, 2), (5, 2), (6, 3), (7, 3)])
def test_registered_reads_keep_the_schedule(latency, read_latency):
    """Registered reads (banks of 64 words, each read into a register of its own, from
    `SELECTED_LATENCY` the chosen word too): the same beats in the same cycles, across banks
    and past the memory's end."""
    image = _image(latency)
    model = AxiSram(B, latency, DEPTH, image, registered=True, bank_words=64)
    assert len(model.banks) == DEPTH // B // 64 and model.read_latency == read_latency
    got = []
    _simulate(model, read_bench(model.bus, READ_BURSTS, got))
    assert got == read_schedule(READ_BURSTS, latency, image)


STALL_BURSTS = [(0, 40, 5), (1, 200, 2), (2, 0, 0)]


def stalling_read_bench(bus, bursts, rng, got: list, held: list, cycles: int = 80):
    """A master that takes a beat with probability 0.4 each cycle: AR ``k`` in cycle ``k``;
    every beat on offer into ``held``, every beat taken into ``got``."""
    async def bench(ctx):
        for c in range(cycles):
            ctx.set(bus.arvalid, c < len(bursts))
            if c < len(bursts):
                ctx.set(bus.araddr, bursts[c][1])
                ctx.set(bus.arlen, bursts[c][2])
            ready = rng.random() < 0.4
            ctx.set(bus.rready, ready)
            if ctx.get(bus.rvalid):
                beat = (ctx.get(bus.rdata), ctx.get(bus.rlast), ctx.get(bus.rresp))
                held.append(beat)
                if ready:
                    got.append(beat)
            await ctx.tick()
    return bench


@pytest.mark.parametrize("latency, registered", [(1, False), (3, False), (5, False), (4, True),
                                                 (5, True), (6, True)])
def test_read_holds_beats_until_rready(latency, registered):
    image = _image(5)
    model = AxiSram(B, latency, DEPTH, image, registered=registered, bank_words=32)
    got, held = [], []
    _simulate(model, stalling_read_bench(model.bus, STALL_BURSTS, random.Random(1), got, held))
    assert got == [beat[1:] for beat in read_schedule(STALL_BURSTS, latency, image)]
    assert len(held) > len(got)         # some beats waited, unchanged, for rready


# AW and W beats by cycle: three bursts, the last one's second beat outside the memory
WRITE_AWS = {0: (16, 2), 1: (100, 0), 6: (DEPTH - 4, 1)}
WRITE_WS = {0: (0x11223344, 0xF, 0), 1: (0x55667788, 0b0110, 0), 2: (0x99AABBCC, 0b1000, 1),
            5: (0xDEADBEEF, 0b0011, 1), 6: (0x01020304, 0xF, 0), 7: (0x05060708, 0xF, 1)}


def write_bench(bus, bready_from: int, got: list, after=None):
    """`WRITE_AWS` and `WRITE_WS` in their cycles, ``bready`` from cycle ``bready_from``;
    (cycle, bresp) of every B response taken into ``got``; then ``after(ctx)`` if given."""
    async def bench(ctx):
        for c in range(40):
            _drive_writes(ctx, bus, c, WRITE_AWS, WRITE_WS)
            ctx.set(bus.bready, c >= bready_from)
            if c in WRITE_WS:
                assert ctx.get(bus.wready)
            if ctx.get(bus.bvalid) and c >= bready_from:
                got.append((c, ctx.get(bus.bresp)))
            await ctx.tick()
        if after is not None:
            await after(ctx)
    return bench


def b_schedule(latency: int, bready_from: int) -> list:
    """The cycles of `write_bench`'s three B responses (OKAY, OKAY, DECERR) at latency L."""
    b1 = max(2 + latency, bready_from)
    b2 = max(5 + latency, b1 + 1)
    b3 = max(7 + latency, b2 + 1)
    return [(b1, 0), (b2, 0), (b3, 3)]


def _drive_writes(ctx, bus, c: int, aws: dict, ws: dict) -> None:
    aw, w = aws.get(c), ws.get(c)
    ctx.set(bus.awvalid, aw is not None)
    if aw:
        ctx.set(bus.awaddr, aw[0])
        ctx.set(bus.awlen, aw[1])
    ctx.set(bus.wvalid, w is not None)
    if w:
        ctx.set(bus.wdata, w[0])
        ctx.set(bus.wstrb, w[1])
        ctx.set(bus.wlast, w[2])


@pytest.mark.parametrize("latency, bready_from, registered", [(1, 0, False), (4, 0, False),
                                                             (4, 12, False), (5, 0, True),
                                                             (6, 3, True)])
def test_writes_and_b_responses(latency, bready_from, registered):
    image = _image(latency)
    model = AxiSram(B, latency, DEPTH, image, registered=registered, bank_words=16)
    got, after = [], []

    async def read_back(ctx):
        after.append(await read_bytes(ctx, model, 0, DEPTH))

    _simulate(model, write_bench(model.bus, bready_from, got, read_back))
    assert got == b_schedule(latency, bready_from)
    want = bytearray(image)
    want[16:20] = (0x11223344).to_bytes(4, "little")
    want[21:23] = (0x55667788).to_bytes(4, "little")[1:3]
    want[27] = 0x99
    want[100:102] = (0xDEADBEEF).to_bytes(4, "little")[:2]
    want[DEPTH - 4:] = (0x01020304).to_bytes(4, "little")   # the second beat is outside
    assert after[0] == bytes(want)


@pytest.mark.parametrize("latency, registered", [(2, False), (4, False), (4, True), (5, True), (6, True),
                                                 (7, True)])
def test_a_read_after_a_write_sees_it(latency, registered):
    """From L = 2 an AR in the cycle of a W beat's handshake (or later) reads the word
    written: the write is in the memory before the read, registered or not."""
    image = _image(3)
    model = AxiSram(B, latency, DEPTH, image, registered=registered, bank_words=16)
    bus, got = model.bus, []
    word = 0x0BADCAFE

    async def bench(ctx):
        ctx.set(bus.rready, 1)
        ctx.set(bus.bready, 1)
        for c in range(12 + latency):
            _drive_writes(ctx, bus, c, {0: (200, 0)}, {0: (word, 0xF, 1)})
            ctx.set(bus.arvalid, c in (0, 1))
            ctx.set(bus.araddr, 200)
            ctx.set(bus.arlen, 0)
            if ctx.get(bus.rvalid):
                got.append((c, ctx.get(bus.rdata)))
            await ctx.tick()

    _simulate(model, bench)
    assert got == [(latency, word), (latency + 1, word)]


def test_w_waits_for_its_address():
    model = AxiSram(B, 2, DEPTH)
    bus = model.bus
    ready = []

    async def bench(ctx):
        for c in range(6):
            _drive_writes(ctx, bus, c, {3: (8, 0)}, {c: (0xCAFEF00D, 0xF, 1)} if c < 4 else {})
            ready.append(ctx.get(bus.wready))
            await ctx.tick()
        assert await read_bytes(ctx, model, 8, 4) == (0xCAFEF00D).to_bytes(4, "little")

    _simulate(model, bench)
    assert ready == [0, 0, 0, 1, 0, 0]


@pytest.mark.parametrize("latency, registered", [(1, False), (4, True), (5, True), (6, True)])
def test_backdoor_helpers_round_trip(latency, registered):
    image = _image(9)
    model = AxiSram(B, latency, DEPTH, image, registered=registered, bank_words=8)
    payload = bytes(range(1, 40))

    async def bench(ctx):
        await load_bytes(ctx, model, 7, payload)
        assert await read_bytes(ctx, model, 7, len(payload)) == payload
        around = await read_bytes(ctx, model, 0, 64)
        assert around == image[:7] + payload + image[46:64]
        await load_bytes(ctx, model, 9, b"\xAA")
        assert await read_bytes(ctx, model, 8, 3) == bytes([payload[1], 0xAA, payload[3]])

    _simulate(model, bench)


def test_parameters_are_validated_and_the_model_converts_to_verilog():
    with pytest.raises(ValueError, match="latency must be a positive integer, not 0"):
        AxiSram(4, 0, 64)
    with pytest.raises(ValueError, match="depth_bytes must be a multiple of data_bytes \\(8\\), not 12"):
        AxiSram(8, 1, 12)
    with pytest.raises(ValueError, match="data_bytes must be a power of two in 1..128, not 6"):
        AxiSram(6, 1, 12)
    with pytest.raises(ValueError, match="init holds 9 bytes, more than depth_bytes 8"):
        AxiSram(4, 1, 8, bytes(9))
    with pytest.raises(ValueError, match="a registered memory needs latency >= 4, not 3"):
        AxiSram(4, 3, 64, registered=True)
    with pytest.raises(ValueError, match="registered reads need the memory in block RAM"):
        AxiSram(4, 5, 64, registered=True, external=True)
    with pytest.raises(ValueError, match="bank_words must be a power of two, not 12"):
        AxiSram(4, 5, 64, registered=True, bank_words=12)
    text = verilog.convert(AxiSram(8, 3, 256), name="axi_memory")
    assert "input [31:0] bus__araddr;" in text and "output [63:0] bus__rdata;" in text


def test_an_external_memory_is_an_instance_of_the_verilog_module():
    """``external=True``: 16 MiB emit as one `SRAM_MODULE` instance, not word by word (the
    Verilator runs of ``bitmill rtlsim`` check its behaviour end to end)."""
    with pytest.raises(ValueError, match="an external memory starts zero: init must be empty"):
        AxiSram(4, 1, 8, bytes(4), external=True)
    text = verilog.convert(AxiSram(4, 16, 16 << 20, external=True), name="axi_memory")
    assert f"{SRAM_MODULE} #(" in text and ".WORDS(32'd4194304)" in text and ".ADDR(32'd22)" in text
    assert len(text) < 100_000
    assert f"module {SRAM_MODULE} #(" in SRAM_VERILOG


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_the_queues_with_registered_flags_behave_as_amaranths_sync_fifo(depth):
    """The memory's AW and B queues (`_DistributedFIFO`, ready flags in registers): under
    random writes and reads that fill and empty them, ``r_rdy``, ``w_rdy`` and ``r_data`` equal
    those of Amaranth's `SyncFIFO` in every cycle."""
    from amaranth import Module
    from amaranth.lib.fifo import SyncFIFO

    from bitmill.hw.axi_sram import _DistributedFIFO
    m = Module()
    m.submodules.ours = ours = _DistributedFIFO(width=8, depth=depth)
    m.submodules.ref = ref = SyncFIFO(width=8, depth=depth)
    rng, flags = random.Random(depth), set()

    async def bench(ctx):
        for c in range(400):
            w, r = rng.random() < (0.7 if c % 100 < 50 else 0.3), rng.random() < 0.5
            for q in (ours, ref):
                ctx.set(q.w_en, w)
                ctx.set(q.r_en, r)
                ctx.set(q.w_data, c & 0xFF)
            got = (ctx.get(ours.r_rdy), ctx.get(ours.w_rdy))
            assert got == (ctx.get(ref.r_rdy), ctx.get(ref.w_rdy)), c
            if got[0]:
                assert ctx.get(ours.r_data) == ctx.get(ref.r_data), c
            flags.add(got)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert {(0, 1), (1, 0)} <= flags           # empty and full were both reached
