"""Packed integer codes in the accelerator's memory: the format LOAD/STORE move and the
simulators decode (a leaf shared by compiler and simulators).

A tensor of ``bits``-bit codes is stored row by row (NHWC: a row is ``W*C`` codes of one image
row; a vector is one row), codes packed little-endian at ``bits`` bits each, every row padded to
a whole byte (``pitch`` bytes). Signed values are stored in two's complement, odd-grid weights as
``j = (v + 2^b - 1) / 2``. Requant parameters are 16-byte records per channel: int16
multiplier, uint8 shift, 5 bytes padding, int64 bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bitmill.numerics import Encoding


def pitch(codes_per_row: int, bits: int) -> int:
    """Bytes of one packed row."""
    return -(-codes_per_row * bits // 8)


def to_codes(values: np.ndarray, bits: int, encoding: Encoding | str) -> np.ndarray:
    """Integer values -> unsigned ``bits``-bit codes (uint8 up to 8 bits, else uint64)."""
    v = np.asarray(values)
    v = v.astype(np.int16 if bits <= 8 else np.int64, copy=False)
    if Encoding(encoding) is Encoding.ODD:
        codes = (v + ((1 << bits) - 1)) >> 1
    else:
        codes = v & ((1 << bits) - 1)
    return codes.astype(np.uint8 if bits <= 8 else np.uint64)


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
    codes = to_codes(values, bits, encoding)
    if bits <= 8 and 8 % bits == 0:           # 1, 2, 4, 8 bits: whole codes per byte
        per = 8 // bits
        if n % per:
            codes = np.concatenate([codes, np.zeros((rows, per - n % per), np.uint8)], axis=1)
        groups = codes.reshape(rows, -1, per)
        out = groups[:, :, 0].copy()
        for j in range(1, per):
            out |= groups[:, :, j] << np.uint8(j * bits)
        return out.tobytes()
    if bits % 8 == 0 and bits in (16, 32):    # whole bytes, little-endian
        return codes.astype(f"<u{bits // 8}").tobytes()
    planes = ((codes.astype(np.uint64)[:, :, None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(np.uint8)
    bitstream = planes.reshape(rows, n * bits)
    pad = pitch(n, bits) * 8 - n * bits
    if pad:
        bitstream = np.concatenate([bitstream, np.zeros((rows, pad), np.uint8)], axis=1)
    return np.packbits(bitstream, axis=1, bitorder="little").tobytes()


@lru_cache(maxsize=64)
def _byte_table(bits: int, encoding: Encoding, dtype: str) -> np.ndarray:
    """(256, 8 // bits) values of the codes in each byte value: one ``np.take`` with it unpacks
    and decodes a whole row of bytes."""
    per = 8 // bits
    codes = (np.arange(256)[:, None] >> (np.arange(per) * bits)) & ((1 << bits) - 1)
    return np.ascontiguousarray(from_codes(codes, bits, encoding).astype(dtype))


def unpack_rows(blob: bytes | np.ndarray, rows: int, n: int, bits: int,
                encoding: Encoding | str, dtype=np.int64) -> np.ndarray:
    """Inverse of `pack_rows`: (rows x n) integer values as ``dtype`` (float32 holds every
    value of up to 24 bits exactly)."""
    raw = np.frombuffer(blob, dtype=np.uint8, count=rows * pitch(n, bits)).reshape(rows, -1)
    dtype = np.dtype(dtype)
    if bits <= 8 and 8 % bits == 0:           # 1, 2, 4, 8 bits: whole codes per byte
        table = _byte_table(bits, Encoding(encoding), dtype.str)
        vals = np.take(table, raw, axis=0).reshape(rows, -1)
        return vals if vals.shape[1] == n else vals[:, :n]
    bitstream = np.unpackbits(raw, axis=1, bitorder="little")[:, :n * bits]
    weights = (1 << np.arange(bits, dtype=np.int64))
    codes = bitstream.reshape(rows, n, bits).astype(np.int64) @ weights
    return from_codes(codes, bits, encoding).astype(dtype, copy=False)


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

    def rows_at(self, r0: int, r1: int) -> tuple[int, int]:
        """DRAM address and bytes of rows ``r0 .. r1`` of the region."""
        if not 0 <= r0 <= r1 <= self.rows:
            raise ValueError(f"rows {r0}..{r1} are not inside the {self.rows} rows of {self.name}")
        return self.addr + r0 * self.pitch, (r1 - r0) * self.pitch

    def to_dict(self) -> dict:
        """The region as a JSON-ready dict (encoding as its name)."""
        return {"name": self.name, "addr": self.addr, "rows": self.rows,
                "row_codes": self.row_codes, "bits": self.bits, "encoding": self.encoding.label}


def read_tensor(image: bytes | bytearray, region: Region) -> np.ndarray:
    """Values of a region as (rows, row_codes)."""
    blob = bytes(image[region.addr:region.addr + region.nbytes])
    return unpack_rows(blob, region.rows, region.row_codes, region.bits, region.encoding)


PARAM_RECORD = 16


_PARAM_DTYPE = np.dtype([("m", "<i2"), ("n", "u1"), ("pad", "V5"), ("b", "<i8")])


def param_records(mult, shift, bias) -> bytes:
    """Packed requant records, one per channel (int16 multiplier, uint8 shift, 5 zero bytes,
    int64 bias, little-endian)."""
    m, n, b = (np.asarray(a, dtype=np.int64).reshape(-1) for a in (mult, shift, bias))
    if not (len(m) == len(n) == len(b)):
        raise ValueError(f"requant records need equal lengths, got {len(m)}, {len(n)}, {len(b)}")
    if (m < -2 ** 15).any() or (m >= 2 ** 15).any() or (n < 0).any() or (n > 255).any():
        raise ValueError("requant multiplier must fit int16 and shift uint8")
    recs = np.zeros(len(m), _PARAM_DTYPE)
    recs["m"], recs["n"], recs["b"] = m, n, b
    return recs.tobytes()


def read_param_records(blob: bytes, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of `param_records`: (multipliers, shifts, biases)."""
    recs = np.frombuffer(blob, dtype=_PARAM_DTYPE, count=count)
    return recs["m"].astype(np.int64), recs["n"].astype(np.int64), recs["b"].astype(np.int64)
