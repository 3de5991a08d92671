"""Host side of the tile engine: integer tiles to buffer words and commands, and the expected
results from the golden model.

A tile is weights ``w`` (R x K_total values) and activations ``a`` (K_total x C values) on
the grids (``w_bits``, ``w_enc``) and (``a_bits``, ``a_enc``); `bitmill.hw.engine` documents
the word layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bitmill.hw.engine import TileEngine
from bitmill.hw.params import VALUE_BITS
from bitmill.hw.sequencer import WeightEncoding, chunk_slots, command_layout
from bitmill.numerics import Encoding, max_abs, on_grid
from bitmill.sim import golden


@dataclass(frozen=True)
class Tile:
    """One GEMM tile and its precision."""
    w: np.ndarray            # (rows, k_total) weight values
    a: np.ndarray            # (k_total, cols) activation values
    w_bits: int
    w_enc: Encoding
    a_bits: int
    a_enc: Encoding

    def __post_init__(self):
        if not on_grid(self.w, self.w_bits, self.w_enc):
            raise ValueError(f"weights are not on the {self.w_bits}-bit {self.w_enc.value} grid")
        if not on_grid(self.a, self.a_bits, self.a_enc):
            raise ValueError(f"activations are not on the {self.a_bits}-bit {self.a_enc.value} grid")
        if self.a_enc is Encoding.ODD:
            raise ValueError("activations must be signed or unsigned, not odd")

    @property
    def k_total(self) -> int:
        return self.w.shape[1]


def codes(values: np.ndarray, bits: int, enc: Encoding) -> np.ndarray:
    """The ``bits``-bit codes of ``values``: two's complement, plain, or odd-grid index."""
    v = np.asarray(values, dtype=np.int64)
    if enc is Encoding.ODD:
        return (v + (1 << bits) - 1) >> 1
    return v & ((1 << bits) - 1)


def _pack(fields: np.ndarray, width: int) -> int:
    """Pack a (vectors, lanes) array of ``width``-bit fields, vector-major, into one int."""
    word = 0
    for pos, f in enumerate(fields.reshape(-1).tolist()):
        word |= (int(f) & ((1 << width) - 1)) << (pos * width)
    return word


def buffer_words(vectors: np.ndarray, bits: int, enc: Encoding,
                 engine: TileEngine) -> dict[int, int]:
    """Words of one operand buffer for ``vectors`` (n, k_total): address -> word."""
    lanes, slots = engine.lanes, chunk_slots(engine.max_chunks)
    chunks = -(-vectors.shape[1] // lanes)
    padded = np.zeros((vectors.shape[0], chunks * lanes), dtype=np.int64)
    if engine.family == "bitserial":
        padded[:, :vectors.shape[1]] = codes(vectors, bits, enc)
        return {p * slots + c: _pack((padded[:, c * lanes:(c + 1) * lanes] >> p) & 1, 1)
                for p in range(bits) for c in range(chunks)}
    padded[:, :vectors.shape[1]] = vectors
    return {c: _pack(padded[:, c * lanes:(c + 1) * lanes], VALUE_BITS) for c in range(chunks)}


def command(tile: Tile, engine: TileEngine) -> int:
    """The packed tile command."""
    chunks = -(-tile.k_total // engine.lanes)
    if chunks > engine.max_chunks:
        raise ValueError(f"k_total {tile.k_total} exceeds the engine's {engine.max_k_total}")
    enc = {Encoding.UNSIGNED: WeightEncoding.UNSIGNED, Encoding.SIGNED: WeightEncoding.SIGNED,
           Encoding.ODD: WeightEncoding.ODD}[tile.w_enc]
    layout = command_layout(engine.max_chunks)
    const = layout.const({"w_bits_m1": tile.w_bits - 1, "a_bits_m1": tile.a_bits - 1,
                          "w_enc": enc, "a_signed": int(tile.a_enc is Encoding.SIGNED),
                          "last_chunk": chunks - 1})
    return const.as_value().value


def expected(tile: Tile) -> np.ndarray:
    """The exact tile result (rows x cols, int64) from the golden model."""
    bound = max_abs(tile.w_bits, tile.w_enc) * max_abs(tile.a_bits, tile.a_enc)
    out = golden.exact_gemm(tile.w, tile.a, bound)
    return np.rint(out).astype(np.int64)
