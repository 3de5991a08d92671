# amaranth: UnusedElaboratable=no
"""The code packer in Amaranth's simulator, writing into an `amaranth.lib.memory.Memory`
like the output buffer: the buffer afterwards equals `bitmill.packing.pack_rows` of the
same codes (any order of arrival), every other bit keeps its value, and the last write
lands exactly `CodePacker.drain_latency` cycles after the last code."""

import random

import numpy as np
import pytest
from amaranth import Module, Mux, Signal
from amaranth.lib import memory
from amaranth.sim import Simulator

from bitmill.hw.packer import DRAIN_LATENCY, CodePacker, span_words
from bitmill.packing import pack_rows, pitch
from bitmill.timing import PACKER_DRAIN


def harness(packer: CodePacker, init: bytes) -> tuple[Module, memory.Memory]:
    """The packer wired to a buffer memory (synchronous read and a register after it, as the
    output buffer's block RAMs with their output registers; byte enables) whose read that
    meets a write of its word answers that word's bits inverted: the output buffer leaves
    such collisions undefined, so the packer must not use what they answer."""
    m = Module()
    m.submodules.packer = packer
    b = packer.data_bytes
    words = [int.from_bytes(init[i * b:(i + 1) * b], "little") for i in range(packer.depth)]
    m.submodules.mem = mem = memory.Memory(shape=8 * b, depth=packer.depth, init=words)
    wr, rd = mem.write_port(granularity=8), mem.read_port()
    collided, read = Signal(), Signal(8 * b)
    m.d.sync += [collided.eq(wr.en.any() & (wr.addr == rd.addr)),
                 read.eq(Mux(collided, ~rd.data, rd.data))]
    m.d.comb += [rd.addr.eq(packer.read_addr), packer.read_data.eq(read),
                 wr.addr.eq(packer.write.payload.addr), wr.data.eq(packer.write.payload.data),
                 wr.en.eq(Mux(packer.write.valid, packer.write.payload.en, 0))]
    return m, mem


def run(data_bytes: int, depth: int, codes: list[tuple], init: bytes):
    """Feed ``codes`` = (gap, bit_addr, value, bits, pad), each after ``gap`` idle cycles,
    holding a code while ``ready`` is low. Returns the buffer bytes afterwards, the cycles
    each code was accepted in, the cycles with a write and the cycles ``ready`` was low."""
    packer = CodePacker(data_bytes, depth)
    top, mem = harness(packer, init)
    accepted, writes, stalls, final, idle = [], [], [], [], []

    async def bench(ctx):
        cycle = 0

        async def tick():
            nonlocal cycle
            if ctx.get(packer.write.valid):
                writes.append(cycle)
            if not ctx.get(packer.ready):
                stalls.append(cycle)
            if ctx.get(packer.idle):
                idle.append(cycle)
            await ctx.tick()
            cycle += 1

        for gap, addr, value, bits, pad in codes:
            ctx.set(packer.valid, 0)
            for _ in range(gap):
                await tick()
            ctx.set(packer.bit_addr, addr)
            ctx.set(packer.value, value)
            ctx.set(packer.bits, bits - 1)
            ctx.set(packer.pad, pad)
            ctx.set(packer.valid, 1)
            while not ctx.get(packer.ready):
                await tick()
            accepted.append(cycle)
            await tick()
        ctx.set(packer.valid, 0)
        for _ in range(DRAIN_LATENCY + 4):
            await tick()
        for _ in range(40):                        # codes of many words drain longer
            if ctx.get(packer.idle):
                break
            await tick()
        for _ in range(3):
            await tick()
        busy = {c for a in accepted for c in range(a + 1, a + DRAIN_LATENCY + 1)}
        assert busy.isdisjoint(idle) and writes[-1] not in idle     # held codes, words
        assert idle[-(cycle - 1 - writes[-1]):] == list(range(writes[-1] + 1, cycle))
        final.append(b"".join(ctx.get(mem.data[i]).to_bytes(data_bytes, "little")
                              for i in range(depth)))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return final[0], accepted, writes, stalls


def model(init: bytes, codes: list[tuple]) -> bytes:
    """The buffer after the codes, bit by bit, in arrival order."""
    bits_of = np.unpackbits(np.frombuffer(init, np.uint8), bitorder="little")
    for _, addr, value, bits, pad in codes:
        end = addr + bits + ((-(addr + bits)) % 8 if pad else 0)
        bits_of[addr:end] = 0
        bits_of[addr:addr + bits] = [(value >> k) & 1 for k in range(bits)]
    return np.packbits(bits_of, bitorder="little").tobytes()


def tensors(rng: np.random.Generator, bit_list, rows: int, n: int, base: int = 3):
    """Tensors of ``rows x n`` random signed codes, one per entry of ``bit_list``, placed one
    after another from byte ``base``: (byte address, bits, values) each, and the bytes used."""
    out, addr = [], base
    for bits in bit_list:
        vals = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(rows, n), dtype=np.int64)
        out.append((addr, bits, vals))
        addr += rows * pitch(n, bits) + int(rng.integers(0, 3))
    return out, addr


def row_codes(addr: int, bits: int, vals) -> list[list[tuple]]:
    """The codes of each row of a tensor at byte ``addr`` (pad on each row's last code)."""
    rows, n = vals.shape
    p = pitch(n, bits)
    return [[(8 * (addr + r * p) + i * bits, int(vals[r, i]), bits, int(i == n - 1))
             for i in range(n)] for r in range(rows)]


def runs_of(codes: list[tuple], rng: random.Random, longest: int) -> list[list[tuple]]:
    """Split a list of codes into runs of 1..``longest`` consecutive codes."""
    runs, i = [], 0
    while i < len(codes):
        k = rng.randint(1, longest)
        runs.append(codes[i:i + k])
        i += k
    return runs


def expected_image(init: bytes, placed) -> bytes:
    image = bytearray(init)
    for addr, bits, vals in placed:
        blob = pack_rows(vals, bits, "signed")
        image[addr:addr + len(blob)] = blob
    return bytes(image)


@pytest.mark.parametrize("data_bytes", [1, 8, 16])
def test_every_width_in_any_order_matches_pack_rows(data_bytes):
    """Rows of every code width 1..32, cut into runs of 1..4 codes, shuffled, with gaps."""
    rng, prng = np.random.default_rng(data_bytes), random.Random(data_bytes)
    placed, used = tensors(rng, list(range(1, 33)), rows=2, n=5)
    depth = -(-(used + 5) // data_bytes)
    init = bytes(rng.integers(0, 256, depth * data_bytes, dtype=np.uint8))
    runs = [run for addr, bits, vals in placed for row in row_codes(addr, bits, vals)
            for run in runs_of(row, prng, 4)]
    prng.shuffle(runs)
    codes = [(prng.choice([0, 0, 0, 1, 2]) if i == 0 else 0, *code)
             for run in runs for i, code in enumerate(run)]
    image, accepted, writes, _ = run(data_bytes, depth, codes, init)
    assert image == expected_image(init, placed)
    assert writes[-1] - accepted[-1] == DRAIN_LATENCY


@pytest.mark.parametrize("data_bytes", [8, 16])
def test_pixel_channel_ranges_back_to_back(data_bytes):
    """An output tile as the compute side writes it: for each pixel a range of channels
    (runs of >= 2 codes), pixels in turn, back to back: one code per cycle, never a stall."""
    rng, prng = np.random.default_rng(3), random.Random(3)
    placed, used = tensors(rng, [3, 5, 7, 8, 13, 16, 32], rows=1, n=6 * 12)
    depth = -(-(used + 5) // data_bytes)
    init = bytes(rng.integers(0, 256, depth * data_bytes, dtype=np.uint8))
    codes = []
    for addr, bits, vals in placed:
        row = row_codes(addr, bits, vals)[0]          # 6 pixels x 12 channels
        for c0 in range(0, 12, 4):                  # tiles of 4 channels
            for px in range(6):
                codes += [(0, *code) for code in row[px * 12 + c0:px * 12 + c0 + 4]]
    image, accepted, writes, stalls = run(data_bytes, depth, codes, init)
    assert image == expected_image(init, placed)
    assert stalls == [] and accepted == list(range(len(codes)))
    assert writes[-1] - accepted[-1] == DRAIN_LATENCY


@pytest.mark.parametrize("data_bytes", [1, 2, 4, 8, 16])
def test_overlapping_codes_last_one_wins(data_bytes):
    """Random codes rewriting a few words again and again (read-after-write through the
    forwarding), gaps and back-to-back, against a bit-level model of the buffer."""
    prng = random.Random(100 + data_bytes)
    depth = max(4, 48 // data_bytes)
    span = depth * data_bytes * 8
    init = bytes(prng.getrandbits(8) for _ in range(depth * data_bytes))
    codes = []
    for _ in range(300):
        bits = prng.randint(1, 32)
        addr = prng.randint(0, span - bits - 8)
        codes.append((prng.choice([0, 0, 0, 0, 1, 2]), addr, prng.getrandbits(32) - (1 << 31),
                      bits, prng.random() < 0.3))
    image, accepted, writes, _ = run(data_bytes, depth, codes, init)
    assert image == model(init, [(g, a, v & ((1 << b) - 1), b, p) for g, a, v, b, p in codes])
    assert writes[-1] - accepted[-1] >= DRAIN_LATENCY


def test_span_words_and_drain():
    assert [span_words(b) for b in (1, 2, 4, 8, 16, 128)] == [5, 3, 2, 2, 2, 2]
    assert CodePacker(8, 16).drain_latency == DRAIN_LATENCY == PACKER_DRAIN == 7


@pytest.mark.parametrize("kwargs,message", [
    ({"data_bytes": 0, "depth": 4}, "data_bytes must be an integer in 1..128, not 0"),
    ({"data_bytes": 256, "depth": 4}, "data_bytes must be an integer in 1..128, not 256"),
    ({"data_bytes": 8, "depth": 0}, "depth must be a positive integer, not 0"),
    ({"data_bytes": 8, "depth": True}, "depth must be a positive integer, not True"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CodePacker(**kwargs)
