"""Host side of the tile engine, shared by every bench (Amaranth simulator, cocotb, Verilator
harness): integer tiles to buffer words and commands (the one packer), and the expected
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
from bitmill.hw.sequencer import chunk_slots, command_layout
from bitmill.numerics import Encoding, max_abs, on_grid
from bitmill.packing import to_codes
from bitmill.sim import golden

WEIGHTS, ACTIVATIONS = 0, 1         # load targets of the engine's buffers


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
            raise ValueError(f"weights are not on the {self.w_bits}-bit {self.w_enc.label} grid")
        if not on_grid(self.a, self.a_bits, self.a_enc):
            raise ValueError(f"activations are not on the {self.a_bits}-bit {self.a_enc.label} grid")
        if self.a_enc is Encoding.ODD:
            raise ValueError("activations must be signed or unsigned, not odd")

    @property
    def k_total(self) -> int:
        return self.w.shape[1]

    @property
    def name(self) -> str:
        """Precision and K_total, as failure messages name a tile."""
        return f"W{self.w_bits}{self.w_enc.label}/A{self.a_bits}{self.a_enc.label} k_total={self.k_total}"

    def operands(self) -> tuple[tuple[int, np.ndarray, int, Encoding], ...]:
        """(load target, vectors (n, k_total), bits, encoding) of the weight and activation
        buffers."""
        return ((WEIGHTS, self.w, self.w_bits, self.w_enc),
                (ACTIVATIONS, self.a.T, self.a_bits, self.a_enc))


def field_bits(values: np.ndarray, width: int) -> np.ndarray:
    """Little-endian bits of ``width``-bit fields, field-major: (..., fields * width) uint8."""
    v = np.asarray(values, dtype=np.int64)[..., None]
    return ((v >> np.arange(width)) & 1).astype(np.uint8).reshape(*v.shape[:-2], -1)


def operand_words(vectors: np.ndarray, bits: int, enc: Encoding, engine: TileEngine
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Buffer addresses and word bits (n_words, word_bits), little-endian, of one operand
    buffer for ``vectors`` (n, k_total): bit-serial, bit ``p`` of the codes of chunk ``c`` at
    address ``p * chunk_slots + c``; bit-parallel, the signed values of chunk ``c`` at ``c``."""
    lanes, n = engine.lanes, vectors.shape[0]
    chunks = -(-vectors.shape[1] // lanes)
    padded = np.zeros((n, chunks * lanes), dtype=np.int64)
    if engine.family == "bitserial":
        padded[:, :vectors.shape[1]] = to_codes(vectors, bits, enc)
        planes = (padded[None] >> np.arange(bits)[:, None, None]) & 1     # (bits, n, K_pad)
        fields = planes.reshape(bits, n, chunks, lanes).transpose(0, 2, 1, 3)
        addrs = (np.arange(bits)[:, None] * chunk_slots(engine.max_chunks)
                 + np.arange(chunks)[None, :]).reshape(-1)
        words = fields.reshape(bits * chunks, n * lanes).astype(np.uint8)
    else:
        padded[:, :vectors.shape[1]] = vectors
        fields = padded.reshape(n, chunks, lanes).transpose(1, 0, 2).reshape(chunks, n * lanes)
        addrs, words = np.arange(chunks), field_bits(fields, VALUE_BITS)
    out = np.zeros((len(addrs), engine.word_bits), dtype=np.uint8)
    out[:, :words.shape[1]] = words
    return addrs, out


def buffer_words(vectors: np.ndarray, bits: int, enc: Encoding,
                 engine: TileEngine) -> dict[int, int]:
    """`operand_words` as integers: address -> word."""
    addrs, words = operand_words(vectors, bits, enc, engine)
    packed = np.packbits(words, axis=1, bitorder="little")
    return {int(a): int.from_bytes(row.tobytes(), "little") for a, row in zip(addrs, packed)}


def tile_loads(tile: Tile, engine: TileEngine) -> list[tuple[int, int, int]]:
    """(target, address, word) of every buffer write ``tile`` needs, weights first."""
    return [(target, addr, word) for target, vectors, bits, enc in tile.operands()
            for addr, word in buffer_words(vectors, bits, enc, engine).items()]


def command(tile: Tile, engine: TileEngine) -> int:
    """The packed tile command."""
    chunks = -(-tile.k_total // engine.lanes)
    if chunks > engine.max_chunks:
        raise ValueError(f"k_total {tile.k_total} exceeds the engine's {engine.max_k_total}")
    layout = command_layout(engine.max_chunks)
    const = layout.const({"w_bits_m1": tile.w_bits - 1, "a_bits_m1": tile.a_bits - 1,
                          "w_enc": tile.w_enc, "a_signed": int(tile.a_enc is Encoding.SIGNED),
                          "last_chunk": chunks - 1})
    return const.as_value().value


def expected(tile: Tile) -> np.ndarray:
    """The exact tile result (rows x cols, int64) from the golden model."""
    bound = max_abs(tile.w_bits, tile.w_enc) * max_abs(tile.a_bits, tile.a_enc)
    out = golden.exact_gemm(tile.w, tile.a, bound)
    return np.rint(out).astype(np.int64)
