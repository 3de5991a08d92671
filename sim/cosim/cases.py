"""Seeded tile suites for the RTL benches: every (w_bits, a_bits) in 1..8 x 1..8 with both
weight encodings (signed, odd grid) and both activation encodings (unsigned, signed), random
and extreme operands, K_total not a multiple of the lane count."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from bitmill.hw.engine import TileEngine
from bitmill.numerics import Encoding, grid_values, value_range
from bitmill.precision import MAX_RUNTIME_BITS
from bitmill.sim.cosim.tiles import Tile

W_ENCODINGS = (Encoding.SIGNED, Encoding.ODD)
A_ENCODINGS = (Encoding.UNSIGNED, Encoding.SIGNED)
EXTREMES = ("min", "max", "min_max", "alternating")


def precisions() -> Iterator[tuple[int, Encoding, int, Encoding]]:
    """Every (w_bits, w_enc, a_bits, a_enc) the engine runs."""
    for wb in range(1, MAX_RUNTIME_BITS + 1):
        for ab in range(1, MAX_RUNTIME_BITS + 1):
            for we in W_ENCODINGS:
                for ae in A_ENCODINGS:
                    yield wb, we, ab, ae


def _ragged_k(engine: TileEngine, rng: np.random.Generator) -> int:
    """A K_total that is not a multiple of the lanes (when lanes > 1), at most 3 chunks."""
    chunks = int(rng.integers(1, min(3, engine.max_chunks) + 1))
    extra = int(rng.integers(1, engine.lanes)) if engine.lanes > 1 else 0
    return min((chunks - 1) * engine.lanes + extra if extra else chunks * engine.lanes,
               engine.max_k_total)


def extreme_tile(engine: TileEngine, prec, kind: str, k_total: int) -> Tile:
    """All-minimum, all-maximum, minimum weights by maximum activations, or alternating."""
    wb, we, ab, ae = prec
    (wlo, whi), (alo, ahi) = value_range(wb, we), value_range(ab, ae)
    shape_w, shape_a = (engine.rows, k_total), (k_total, engine.cols)
    if kind == "alternating":
        lanes = np.arange(k_total)
        w = np.broadcast_to(np.where(lanes % 2, whi, wlo), shape_w)
        a = np.broadcast_to(np.where(lanes % 2, alo, ahi)[:, None], shape_a)
    else:
        wv, av = {"min": (wlo, alo), "max": (whi, ahi), "min_max": (wlo, ahi)}[kind]
        w, a = np.full(shape_w, wv), np.full(shape_a, av)
    return Tile(np.array(w, dtype=np.int64), np.array(a, dtype=np.int64), wb, we, ab, ae)


def random_tile(engine: TileEngine, prec, rng: np.random.Generator, k_total: int) -> Tile:
    wb, we, ab, ae = prec
    w = rng.choice(grid_values(wb, we), (engine.rows, k_total))
    a = rng.choice(grid_values(ab, ae), (k_total, engine.cols))
    return Tile(w, a, wb, we, ab, ae)


def suite(engine: TileEngine, seed: int) -> list[Tile]:
    """Per precision: one random tile and every extreme at a ragged K_total; at W8A8 also
    every extreme at the engine's largest K_total (accumulators at their bound)."""
    rng = np.random.default_rng(seed)
    tiles: list[Tile] = []
    for prec in precisions():
        tiles.append(random_tile(engine, prec, rng, _ragged_k(engine, rng)))
        k = _ragged_k(engine, rng)
        tiles += [extreme_tile(engine, prec, kind, k) for kind in EXTREMES]
        if prec[0] == prec[2] == 8:
            tiles += [extreme_tile(engine, prec, kind, engine.max_k_total) for kind in EXTREMES]
    return tiles
