"""The Verilator C++ harness (`bitmill.sim.cosim.harness`): its vectorised packing equals a
word-by-word reference packing, and on the tiny arrays every tile equals the golden GEMM and
the cycle formula."""

import numpy as np
import pytest

from bitmill.hw.engine import TileEngine, load_layout
from bitmill.hw.params import VALUE_BITS
from bitmill.hw.sequencer import chunk_slots
from bitmill.numerics import Encoding
from bitmill.sim.cosim import harness
from bitmill.sim.cosim.checker import TileChecker
from bitmill.sim.cosim.tiles import expected


def _pack(fields: np.ndarray, width: int) -> int:
    """Pack a (vectors, lanes) array of ``width``-bit fields, vector-major, into one int."""
    word = 0
    for pos, f in enumerate(fields.reshape(-1).tolist()):
        word |= (int(f) & ((1 << width) - 1)) << (pos * width)
    return word


def buffer_words(vectors, bits, enc, engine) -> dict[int, int]:
    """Reference packing of one operand buffer, word by word: address -> word."""
    lanes, slots = engine.lanes, chunk_slots(engine.max_chunks)
    chunks = -(-vectors.shape[1] // lanes)
    padded = np.zeros((vectors.shape[0], chunks * lanes), dtype=np.int64)
    if engine.family == "bitserial":
        v = np.asarray(vectors, dtype=np.int64)
        padded[:, :vectors.shape[1]] = ((v + (1 << bits) - 1) >> 1 if enc is Encoding.ODD
                                        else v & ((1 << bits) - 1))
        return {p * slots + c: _pack((padded[:, c * lanes:(c + 1) * lanes] >> p) & 1, 1)
                for p in range(bits) for c in range(chunks)}
    padded[:, :vectors.shape[1]] = vectors
    return {c: _pack(padded[:, c * lanes:(c + 1) * lanes], VALUE_BITS) for c in range(chunks)}


def _engine(cfg) -> TileEngine:
    engine = TileEngine.from_config(cfg)
    engine._MustUse__silence = True
    return engine


@pytest.mark.parametrize("config", ["tiny", "tiny_bitparallel"])
def test_payloads_equal_the_reference_packing(config, request):
    engine = _engine(request.getfixturevalue(config))
    layout = load_layout(engine.word_bits, engine.depth)
    for tile in harness.harness_tiles(engine, 40, seed=3):
        want = [layout.const({"target": target, "addr": addr, "data": word}).as_value().value
                for target, vecs, bits, enc in ((0, tile.w, tile.w_bits, tile.w_enc),
                                                (1, tile.a.T, tile.a_bits, tile.a_enc))
                for addr, word in buffer_words(vecs, bits, enc, engine).items()]
        got = [int.from_bytes(row.tobytes(), "little") for row in harness.load_payloads(tile, engine)]
        assert got == want


def test_check_reports_a_wrong_value_and_cycle_count(tiny):
    engine = _engine(tiny)
    tiles = harness.harness_tiles(engine, 2, seed=0)
    raw = []
    for tile in tiles:
        cycles = engine.tile_cycles(tile.k_total, tile.w_bits, tile.a_bits)
        raw += [cycles] + [int(v) & ((1 << 64) - 1) for v in
                           expected(tile).reshape(-1)]
    good = harness.check(np.array(raw, dtype=np.uint64), tiles, engine,
                         {"cycles": 10, "wall_s": 1.0, "compute_s": 0.5})
    assert good.failures == () and good.tile_cycles == sum(raw[0::5])
    raw[1] += 1                                            # tile 0, result (0, 0)
    raw[5] += 1                                            # tile 1, cycle count
    bad = harness.check(np.array(raw, dtype=np.uint64), tiles, engine,
                        {"cycles": 10, "wall_s": 1.0, "compute_s": 0.5})
    assert bad.value_mismatches == 1 and bad.cycle_mismatches == 1
    assert "first difference at (0, 0)" in bad.failures[0]


@pytest.mark.cosim
@pytest.mark.verilator
@pytest.mark.parametrize("config", ["tiny", "tiny_bitparallel"])
def test_harness_tiles_equal_golden(config, request, verilator, tmp_path):
    cfg = request.getfixturevalue(config)
    engine = _engine(cfg)
    exe, manifest, _ = harness.build(cfg, tmp_path)
    tiles = harness.harness_tiles(engine, 300, seed=5, max_chunks=engine.max_chunks)
    run = harness.run(exe, manifest, tiles, tmp_path)
    assert run.failures == ()
    assert run.tiles == 300 and run.value_mismatches == 0 and run.cycle_mismatches == 0
    assert run.tile_cycles == sum(engine.tile_cycles(t.k_total, t.w_bits, t.a_bits) for t in tiles)


def test_checker_names_the_tile_and_the_first_difference(tiny):
    engine = _engine(tiny)
    tile = harness.harness_tiles(engine, 1, seed=4)[0]
    checker = TileChecker(engine)
    cycles = engine.tile_cycles(tile.k_total, tile.w_bits, tile.a_bits)
    assert checker.check(tile, expected(tile), cycles)
    wrong = expected(tile).copy()
    wrong[1, 0] += 3
    assert not checker.check(tile, wrong, cycles + 1)
    assert (checker.tiles, checker.value_mismatches, checker.cycle_mismatches) == (2, 1, 1)
    assert checker.failures[0].startswith(f"tile 1 {tile.name}: first difference at (1, 0)")
    assert checker.failures[1].endswith(f"expected {cycles} cycles, measured {cycles + 1}")
    assert checker.summary()["tile_cycles"] == 2 * cycles + 1
