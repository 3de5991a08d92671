# amaranth: UnusedElaboratable=no
"""Operand stagers in Amaranth's simulator: a buffer memory holds packed codes
(`bitmill.packing.pack_rows`) among random bytes; the engine words a stager emits equal
`bitmill.sim.cosim.tiles` words of the same tile (weights: the R x K_total block; activations:
`golden.im2col` columns), and start -> finish + 1 equals the `bitmill.timing` formula."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import memory
from amaranth.sim import Simulator

from bitmill import timing
from bitmill.config import AccelConfig
from bitmill.hw.engine import TileEngine
from bitmill.hw.staging_acts import ActStager
from bitmill.hw.staging_weights import WeightStager
from bitmill.isa import Buffer, slot_bytes
from bitmill.numerics import Encoding, value_range
from bitmill.packing import pack_rows
from bitmill.sim import golden
from bitmill.sim.cosim.tiles import buffer_words

S, U, O = Encoding.SIGNED, Encoding.UNSIGNED, Encoding.ODD
CONFIGS = ("tiny", "tiny-bitparallel")


@functools.lru_cache(maxsize=None)
def engine_of(cfg: AccelConfig) -> TileEngine:
    """The engine whose words the stagers write (a layout reference, never elaborated)."""
    engine = TileEngine.from_config(cfg)
    engine._MustUse__used = True
    return engine


def grid_values(rng, shape, bits: int, enc: Encoding) -> np.ndarray:
    lo, hi = value_range(bits, enc)
    v = rng.integers(lo, hi + 1, size=shape)
    return v | 1 if enc is O else v          # odd grid: odd values only (|v| <= 2^b - 1)


def run_stager(stager, buffer: Buffer, image: bytes, cmd: dict, watch=None) -> tuple[dict[int, int], int]:
    """Engine words (address -> word) the stager emits, and cycles from start to finish + 1.
    Every target must be the stager's; no address is written twice. ``watch``: a background
    testbench run beside it."""
    cfg = stager.cfg
    B = cfg.mem_bytes_per_cycle
    depth = 2 * slot_bytes(cfg, buffer) // B
    m = Module()
    m.submodules.stager = stager
    m.submodules.mem = mem = memory.Memory(
        shape=8 * B, depth=depth,
        init=[int.from_bytes(image[i * B:(i + 1) * B], "little") for i in range(depth)])
    port = mem.read_port()
    m.d.comb += [port.addr.eq(stager.read_addr), stager.read_data.eq(port.data)]
    words, cycles = {}, []
    target = 0 if isinstance(stager, WeightStager) else 1

    async def bench(ctx):
        ctx.set(stager.cmd, cmd)
        ctx.set(stager.start, 1)
        await ctx.tick()
        ctx.set(stager.start, 0)
        n = 1
        while True:
            assert ctx.get(stager.busy) == 1
            if ctx.get(stager.load.valid):
                assert ctx.get(stager.load.payload.target) == target
                addr = ctx.get(stager.load.payload.addr)
                assert addr not in words, f"word {addr} written twice"
                words[addr] = ctx.get(stager.load.payload.data)
            if ctx.get(stager.finish):
                break
            await ctx.tick()
            n += 1
            assert n < 20000, "no finish"
        cycles.append(n + 1)
        await ctx.tick()
        assert ctx.get(stager.busy) == 0 and ctx.get(stager.load.valid) == 0

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if watch is not None:
        sim.add_testbench(watch, background=True)
    sim.run()
    return words, cycles[0]


def buffer_image(cfg: AccelConfig, buffer: Buffer, rng, slot: int, blob: bytes) -> tuple[bytes, int]:
    """Random bytes with ``blob`` at the start of ``slot``; the slot's base word."""
    size = 2 * slot_bytes(cfg, buffer)
    image = bytearray(rng.integers(0, 256, size=size, dtype=np.uint8).tobytes())
    off = slot * slot_bytes(cfg, buffer)
    image[off:off + len(blob)] = blob
    return bytes(image), off // cfg.mem_bytes_per_cycle


# ---- weights --------------------------------------------------------------------------------
def check_weights(cfg: AccelConfig, k_total: int, bits: int, enc: Encoding, row: int,
                  valid: int, slot: int, seed: int = 0, row_k: int | None = None, k0: int = 0) -> None:
    """Rows ``row .. row+valid`` of ``row_k`` codes (default ``k_total``), codes ``k0 ..
    k0+k_total`` of each (a partial-sum pass)."""
    rng = np.random.default_rng(seed)
    row_k = k_total if row_k is None else row_k
    w = grid_values(rng, (row + cfg.rows + 1, row_k), bits, enc)
    image, base = buffer_image(cfg, Buffer.WEIGHT, rng, slot, pack_rows(w, bits, enc))
    stager = WeightStager(cfg)
    got, cycles = run_stager(stager, Buffer.WEIGHT, image, {
        "base": base, "row": row, "rows": valid, "k_total": k_total, "row_k": row_k, "k0": k0,
        "w_bits": bits, "w_enc": enc})
    expected = buffer_words(w[row:row + valid, k0:k0 + k_total], bits, enc, engine_of(cfg))
    assert got == expected
    assert cycles == timing.weight_stage_cycles(cfg, k_total, bits, row_k, k0) == \
        stager.cycles(k_total, bits, row_k, k0)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("bits", range(1, 9))
def test_weights_every_width(name, bits):
    cfg = AccelConfig.resolve(name)
    enc = (S, O)[bits % 2]
    check_weights(cfg, 5 + 7 * bits, bits, enc, row=bits % 3, valid=cfg.rows, slot=bits % 2, seed=bits)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("k_total,bits,enc,row,valid", [
    (1, 8, S, 0, 2), (8, 3, O, 4, 1), (16, 2, S, 1, 0), (9, 7, O, 2, 2), (128, 5, S, 0, 2)])
def test_weights_shapes(name, k_total, bits, enc, row, valid):
    """One code, exactly one chunk, invalid rows (zero), the largest K_total of the engine."""
    check_weights(AccelConfig.resolve(name), k_total, bits, enc, row, valid, slot=1, seed=k_total)


# ---- activations ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Layer:
    kernel: int
    stride: int
    pad: int
    in_h: int
    in_w: int
    in_c: int

    @property
    def out_h(self) -> int:
        return (self.in_h + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def out_w(self) -> int:
        return (self.in_w + 2 * self.pad - self.kernel) // self.stride + 1


def band_rows(layer: Layer, pixels: range) -> tuple[int, int]:
    """Input rows ``[first, last)`` the pixels read inside the image."""
    ys = [p // layer.out_w for p in pixels]
    top = [y * layer.stride - layer.pad for y in ys]
    return max(0, min(top)), min(layer.in_h, max(top) + layer.kernel)


def check_acts(cfg: AccelConfig, layer: Layer, bits: int, enc: Encoding, p: int,
               slot: int = 1, seed: int = 0, spare_rows: int = 0, ky0: int = 0,
               rows: int | None = None) -> None:
    """Tile of pixels ``p .. p+C-1`` (those inside the output are valid), kernel rows ``ky0 ..
    ky0+rows`` (default all: a partial-sum pass takes fewer); the slot holds the band of input
    rows they need, starting ``spare_rows`` rows above it where possible."""
    rows = layer.kernel if rows is None else rows
    rng = np.random.default_rng(seed)
    x = grid_values(rng, (layer.in_h, layer.in_w, layer.in_c), bits, enc)
    npix = layer.out_h * layer.out_w
    valid = min(cfg.cols, npix - p)
    lo, hi = band_rows(layer, range(p, p + valid))
    row0 = max(0, lo - spare_rows)
    band = x[row0:hi].reshape(hi - row0, -1)
    image, base = buffer_image(cfg, Buffer.ACT, rng, slot, pack_rows(band, bits, enc))
    stager = ActStager(cfg)
    got, cycles = run_stager(stager, Buffer.ACT, image, {
        "base": base, "p": p, "cols": valid, "ky0": ky0, "rows": rows, "kernel": layer.kernel,
        "stride": layer.stride,
        "pad": layer.pad, "in_h": layer.in_h, "in_w": layer.in_w, "in_c": layer.in_c,
        "out_w": layer.out_w, "band_row0": row0, "a_bits": bits, "a_enc": enc})
    cols = golden.im2col(x[None], layer.kernel, layer.kernel, layer.stride, layer.pad)
    run = layer.kernel * layer.in_c
    expected = buffer_words(cols[p:p + valid, ky0 * run:(ky0 + rows) * run], bits, enc, engine_of(cfg))
    assert got == expected
    formula = timing.act_stage_cycles(cfg, layer.kernel, layer.in_c, layer.in_w, bits, rows)
    assert cycles == formula == stager.cycles(layer.kernel, layer.in_c, layer.in_w, bits, rows)


CONV3 = Layer(3, 1, 1, 5, 6, 3)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("bits", range(1, 9))
def test_acts_every_width(name, bits):
    """3x3 pad 1: the tile at the image's top-left corner (padding rows and columns)."""
    check_acts(AccelConfig.resolve(name), CONV3, bits, (U, S)[bits % 2], p=0, seed=bits)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("layer,p,bits,enc", [
    (CONV3, 5, 4, S),                       # right edge -> next row's left edge
    (CONV3, 29, 3, U),                      # the last, partial tile (bottom-right corner)
    (Layer(3, 2, 1, 7, 7, 2), 3, 5, S),     # stride 2: last column, then next row
    (Layer(3, 1, 0, 4, 5, 4), 4, 2, U),     # no padding, wrapping rows
    (Layer(3, 2, 0, 6, 6, 3), 3, 6, S),     # stride 2 pad 0, last tile
    (Layer(1, 1, 0, 3, 4, 5), 6, 7, S),     # 1x1
    (Layer(1, 2, 0, 5, 5, 3), 7, 8, U),     # 1x1 stride 2, partial tile
    (Layer(7, 2, 3, 9, 9, 2), 0, 4, S),     # 7x7 stride 2 pad 3: corner
    (Layer(7, 2, 3, 9, 9, 2), 24, 2, U),    # ... the last pixel
    (Layer(1, 1, 0, 1, 1, 20), 0, 5, S),    # dense: one pixel, 20 features
])
def test_acts_shapes(name, layer, p, bits, enc):
    check_acts(AccelConfig.resolve(name), layer, bits, enc, p, seed=p + bits)


@pytest.mark.parametrize("name", CONFIGS)
def test_acts_band_below_slot_start(name):
    """A band that starts rows below the first row the tile reads (band_row0 > 0, slot 0)."""
    check_acts(AccelConfig.resolve(name), Layer(3, 1, 1, 8, 4, 2), 6, S, p=18, slot=0, seed=3,
               spare_rows=2)


def _kept_walk_states(core) -> list:
    """The walk registers the core makes as it elaborates, kept in the list returned (for a
    watch that reads them)."""
    walks, make = [], core._walk_state

    def keep_walk_state():
        walks.append(make())
        return walks[-1]

    core._walk_state = keep_walk_state
    return walks


def test_the_walks_room_differences_equal_the_rooms_differences_in_every_cycle():
    """The core keeps the differences of its rooms (lanes ``rl``, run ``rr``, vector ``rv``)
    in registers beside them and tells the least room by their signs: in every cycle of an
    im2col walk whose runs (9 codes) end inside 8-lane chunks and chunks inside runs, over
    two columns, each register equals its difference of the rooms, and the stager's words are
    golden's."""
    cfg = AccelConfig.resolve("tiny")
    layer = Layer(3, 1, 1, 5, 6, 3)
    rng = np.random.default_rng(7)
    x = grid_values(rng, (layer.in_h, layer.in_w, layer.in_c), 3, S)
    image, base = buffer_image(cfg, Buffer.ACT, rng, 0, pack_rows(x.reshape(layer.in_h, -1), 3, S))
    stager = ActStager(cfg)
    core, walks, seen = stager._core, _kept_walk_states(stager._core), []

    async def watch(ctx):
        st = walks[0]
        while True:
            await ctx.tick()
            rooms = [ctx.get(st["rl"]), ctx.get(st["cur"]["rr"]), ctx.get(st["cur"]["rv"])]
            if ctx.get(st["reading"]):
                d = {n: ctx.get(st["d"][n]) for n in ("01", "02", "12", "21")}
                assert d == {"01": rooms[0] - rooms[1], "02": rooms[0] - rooms[2],
                             "12": rooms[1] - rooms[2], "21": rooms[2] - rooms[1]}, (rooms, d)
                seen.append(tuple(rooms))

    got, _ = run_stager(stager, Buffer.ACT, image, {
        "base": base, "p": 0, "cols": 2, "ky0": 0, "rows": 3, "kernel": 3, "stride": 1, "pad": 1,
        "in_h": layer.in_h, "in_w": layer.in_w, "in_c": layer.in_c, "out_w": layer.out_w,
        "band_row0": 0, "a_bits": 3, "a_enc": S}, watch=watch)
    cols = golden.im2col(x[None], 3, 3, 1, 1)
    assert got == buffer_words(cols[0:2], 3, S, engine_of(cfg))
    # the walk took pieces where each of the three rooms was the least
    assert any(r[0] < min(r[1], r[2]) for r in seen) and any(r[1] < min(r[0], r[2]) for r in seen)
    assert any(r[2] <= min(r[0], r[1]) for r in seen)


def _watch_last_flags(core, walks: list, seen: list):
    """A watch of the core's walk: in every reading cycle its registers ``last_word``,
    ``last_piece``, ``last_vector`` equal ``i + 1 == words``, ``k + 1 == pieces``, ``v ==
    vectors - 1``, the plan's counts those of the core's start cycle (the flags are set from
    them there); each (flags, counts) seen into ``seen``."""
    async def watch(ctx):
        st, plan, at_start = walks[0], core.plan, None
        while True:
            if ctx.get(core.start):
                at_start = (ctx.get(plan.words), ctx.get(plan.pieces))
            await ctx.tick()
            if ctx.get(st["reading"]):
                words, pieces = ctx.get(plan.words), ctx.get(plan.pieces)
                assert (words, pieces) == at_start
                i, k, v = ctx.get(st["i"]), ctx.get(st["k"]), ctx.get(st["v"])
                flags = (ctx.get(st["last_word"]), ctx.get(st["last_piece"]), ctx.get(st["last_vec"]))
                assert flags == (i + 1 == words, k + 1 == pieces, v == core.vectors - 1), (i, k, v, flags)
                seen.append((flags, words, pieces))
    return watch


@pytest.mark.parametrize("kind", ["weights", "acts"])
def test_the_walks_last_flags_equal_the_counts_comparisons_in_every_cycle(kind):
    """The core's last word, piece and vector are registers set a step ahead: in every cycle
    of a weight walk (several words per piece) and of a 7x7 im2col walk (several pieces per
    chunk, several chunks) each equals its comparison, and the words are golden's."""
    cfg = AccelConfig.resolve("tiny")
    rng = np.random.default_rng(5)
    stager = WeightStager(cfg) if kind == "weights" else ActStager(cfg)
    core, walks, seen = stager._core, _kept_walk_states(stager._core), []
    watch = _watch_last_flags(core, walks, seen)
    if kind == "weights":
        w = grid_values(rng, (cfg.rows + 1, 45), 5, S)
        image, base = buffer_image(cfg, Buffer.WEIGHT, rng, 1, pack_rows(w, 5, S))
        got, _ = run_stager(stager, Buffer.WEIGHT, image, {
            "base": base, "row": 1, "rows": cfg.rows, "k_total": 45, "row_k": 45, "k0": 0,
            "w_bits": 5, "w_enc": S}, watch=watch)
        assert got == buffer_words(w[1:1 + cfg.rows], 5, S, engine_of(cfg))
    else:
        layer = Layer(7, 2, 3, 9, 9, 2)
        x = grid_values(rng, (layer.in_h, layer.in_w, layer.in_c), 4, S)
        image, base = buffer_image(cfg, Buffer.ACT, rng, 1, pack_rows(x.reshape(layer.in_h, -1), 4, S))
        got, _ = run_stager(stager, Buffer.ACT, image, {
            "base": base, "p": 0, "cols": cfg.cols, "ky0": 0, "rows": 7, "kernel": 7, "stride": 2,
            "pad": 3, "in_h": layer.in_h, "in_w": layer.in_w, "in_c": layer.in_c,
            "out_w": layer.out_w, "band_row0": 0, "a_bits": 4, "a_enc": S}, watch=watch)
        cols = golden.im2col(x[None], 7, 7, 2, 3)
        assert got == buffer_words(cols[0:cfg.cols], 4, S, engine_of(cfg))
    # every flag was seen both ways where the walk has more than one of its counts
    words, pieces = seen[0][1], seen[0][2]
    assert words > 1 and {f[0] for f, _, _ in seen} == {0, 1}
    assert {f[2] for f, _, _ in seen} == {0, 1}
    if kind == "acts":
        assert pieces > 1 and {f[1] for f, _, _ in seen} == {0, 1}


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("layer,p,ky0,rows,bits,enc", [
    (CONV3, 0, 1, 2, 4, S),                 # the lower two kernel rows, top padding row skipped
    (CONV3, 29, 2, 1, 3, U),                # the last kernel row of the bottom-right tile (padding)
    (Layer(7, 2, 3, 9, 9, 2), 24, 3, 3, 5, S),   # 7x7: rows 3..5 of the last pixel
    (Layer(3, 2, 0, 6, 6, 3), 3, 1, 1, 2, U),    # stride 2, the middle row
])
def test_acts_partial_sum_pass(name, layer, p, ky0, rows, bits, enc):
    """A pass's columns: kernel rows ``ky0 .. ky0+rows`` of the im2col columns."""
    check_acts(AccelConfig.resolve(name), layer, bits, enc, p, seed=p + bits, ky0=ky0, rows=rows)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("k0,k_total,bits", [(24, 24, 4), (16, 40, 3), (51, 17, 5)])
def test_weights_partial_sum_pass(name, k0, k_total, bits):
    """Codes ``k0 .. k0+k_total`` of rows of 72 codes (a pass's kernel rows)."""
    check_weights(AccelConfig.resolve(name), k_total, bits, S, row=1, valid=2, slot=1,
                  seed=k0, row_k=72, k0=k0)


# ---- formulas and parameters ----------------------------------------------------------------
def test_formulas_are_independent_of_pixel_and_data():
    cfg = AccelConfig.resolve("ecp5-85f")
    # K | kernel*in_c and every piece start on a word: two reads per 64 4-bit codes
    assert timing.stage_words(cfg, 64, 4, (32 * 8 * 7, 256, 256)) == 2
    assert timing.act_pieces(cfg, 3, 64) == 1 and timing.act_pieces(cfg, 7, 3) == 4
    chunks, words, stall = 9, 2, 2          # k_total 576, 4 bits: emit 4 > 1 piece x 2 words
    assert timing.act_stage_cycles(cfg, 3, 64, 14, 4) == (
        12 + 3 + chunks * 16 * words + (chunks - 1) * stall + 4 + timing.STAGE_PIPE)


def test_bad_parameters():
    with pytest.raises(ValueError, match="cfg must be an AccelConfig, not 'tiny'"):
        WeightStager("tiny")
    with pytest.raises(ValueError, match="mem_bytes_per_cycle must be a power of two in 1..16"):
        AccelConfig.from_dict({**AccelConfig.resolve("tiny").to_dict(), "mem_bytes_per_cycle": 12})


@pytest.mark.parametrize("layer,p,bits,enc", [
    (Layer(3, 1, 1, 4, 5, 64), 8, 4, U),       # 16 columns, 9 chunks of 64 lanes, 128-bit words
    (Layer(7, 2, 3, 8, 8, 3), 0, 3, S),        # first layer: pieces span kernel rows
])
def test_acts_ecp5_85f(layer, p, bits, enc):
    check_acts(AccelConfig.resolve("ecp5-85f"), layer, bits, enc, p, seed=11)


def test_weights_ecp5_85f():
    check_weights(AccelConfig.resolve("ecp5-85f"), 3 * 3 * 64, 3, O, row=5, valid=16, slot=1)


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("seed", range(6))
def test_acts_random_layers_every_tile(name, seed):
    """Random geometry (kernel, stride, pad, channels, width, bits); every tile of the image."""
    cfg, rng = AccelConfig.resolve(name), np.random.default_rng(100 + seed)
    kernel = int(rng.choice([1, 3, 5, 7]))
    in_c = int(rng.integers(1, max(2, 128 // kernel ** 2) + 1))
    layer = Layer(kernel, int(rng.integers(1, 4)), int(rng.integers(0, min(kernel, 4))),
                  int(rng.integers(kernel, kernel + 4)), int(rng.integers(kernel, kernel + 5)), in_c)
    bits, enc = int(rng.integers(1, 9)), (U, S)[seed % 2]
    for p in range(0, layer.out_h * layer.out_w, cfg.cols):
        check_acts(cfg, layer, bits, enc, p, slot=p % 2, seed=seed * 1000 + p)
