"""Packed integer codes in the accelerator's memory: the format LOAD/STORE move and the
simulators decode (a leaf shared by compiler and simulators).

A tensor of ``bits``-bit codes is stored row by row (NHWC: a row is ``W*C`` codes of one image
row; a vector is one row), codes packed little-endian at ``bits`` bits each, every row padded to
a whole byte (``pitch`` bytes). Signed values are stored in two's complement, odd-grid weights as
``j = (v + 2^b - 1) / 2``. Requant parameters are 16-byte records per channel: int16
multiplier, uint8 shift, 5 bytes padding, int64 bias.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from bitmill.numerics import Encoding



def pitch(codes_per_row: int, bits: int) -> int:
    """Bytes of one packed row."""
    return -(-codes_per_row * bits // 8)


def to_codes(values: np.ndarray, bits: int, encoding: Encoding | str) -> np.ndarray:
    """Integer values -> unsigned ``bits``-bit codes."""
    v = np.asarray(values, dtype=np.int64)
    if Encoding(encoding) is Encoding.ODD:
        return (v + (1 << bits) - 1) >> 1
    return v & ((1 << bits) - 1)


def from_codes(codes: np.ndarray, bits: int, encoding: Encoding | str) -> np.ndarray:
    """Unsigned codes -> integer values."""
    c = np.asarray(codes, dtype=np.int64)
    enc = Encoding(encoding)
    if enc is Encoding.ODD:
        return 2 * c - ((1 << bits) - 1)
    if enc is Encoding.SIGNED:
        return c - ((c >> (bits - 1)) << bits)
    return c


def pack_rows(values: np.ndarray, bits: int, encoding: Encoding | str) -> bytes:
    """Pack a 2-D array (rows x codes per row) into padded rows of packed codes."""
    values = np.asarray(values)
    rows, n = values.shape
    codes = to_codes(values, bits, encoding).astype(np.uint64)
    planes = ((codes[:, :, None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(np.uint8)
    bitstream = planes.reshape(rows, n * bits)
    pad = pitch(n, bits) * 8 - n * bits
    if pad:
        bitstream = np.concatenate([bitstream, np.zeros((rows, pad), np.uint8)], axis=1)
    return np.packbits(bitstream, axis=1, bitorder="little").tobytes()


def unpack_rows(blob: bytes | np.ndarray, rows: int, n: int, bits: int,
                encoding: Encoding | str) -> np.ndarray:
    """Inverse of `pack_rows`: (rows x n) integer values."""
    raw = np.frombuffer(blob, dtype=np.uint8, count=rows * pitch(n, bits)).reshape(rows, -1)
    if bits == 8:
        codes = raw[:, :n].astype(np.int64)
    elif 8 % bits == 0:                       # 1, 2, 4 bits: whole codes per byte
        per = 8 // bits
        shifts = np.arange(per, dtype=np.uint8) * bits
        codes = ((raw[:, :, None] >> shifts) & ((1 << bits) - 1)).reshape(rows, -1)[:, :n].astype(np.int64)
    else:
        bitstream = np.unpackbits(raw, axis=1, bitorder="little")[:, :n * bits]
        weights = (1 << np.arange(bits, dtype=np.int64))
        codes = bitstream.reshape(rows, n, bits).astype(np.int64) @ weights
    return from_codes(codes, bits, encoding)


@dataclass(frozen=True)
class Region:
    """A tensor in DRAM: address, rows x codes per row, bits, encoding."""

    name: str
    addr: int
    rows: int
    row_codes: int
    bits: int
    encoding: Encoding

    @property
    def pitch(self) -> int:
        return pitch(self.row_codes, self.bits)

    @property
    def nbytes(self) -> int:
        return self.rows * self.pitch


def read_tensor(image: bytes | bytearray, region: Region) -> np.ndarray:
    """Values of a region as (rows, row_codes)."""
    blob = bytes(image[region.addr:region.addr + region.nbytes])
    return unpack_rows(blob, region.rows, region.row_codes, region.bits, region.encoding)


PARAM_RECORD = 16


def param_records(mult, shift, bias) -> bytes:
    """Packed requant records, one per channel."""
    return b"".join(struct.pack("<hB5xq", int(m), int(n), int(b)) for m, n, b in zip(mult, shift, bias))


_PARAM_DTYPE = np.dtype([("m", "<i2"), ("n", "u1"), ("pad", "V5"), ("b", "<i8")])


def read_param_records(blob: bytes, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of `param_records`: (multipliers, shifts, biases)."""
    recs = np.frombuffer(blob, dtype=_PARAM_DTYPE, count=count)
    return recs["m"].astype(np.int64), recs["n"].astype(np.int64), recs["b"].astype(np.int64)
