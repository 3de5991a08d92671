"""Packed memory format: fast pack/unpack paths equal a bit-by-bit reference."""

import numpy as np
import pytest

from bitmill import numerics
from bitmill.packing import pack_rows, pitch, unpack_rows
from bitmill.numerics import Encoding


def _reference_pack(values: np.ndarray, bits: int, enc: Encoding) -> bytes:
    """Little-endian bit stream per row, each row padded to whole bytes (Python integers)."""
    out = bytearray()
    for row in values.tolist():
        acc = 0
        for i, v in enumerate(row):
            code = (v + (1 << bits) - 1) // 2 if enc is Encoding.ODD else v & ((1 << bits) - 1)
            acc |= code << (i * bits)
        out += acc.to_bytes(pitch(len(row), bits), "little")
    return bytes(out)


CASES = [(b, e) for b in (1, 2, 3, 4, 5, 6, 7, 8) for e in Encoding] + \
        [(b, e) for b in (16, 24, 32) for e in (Encoding.SIGNED, Encoding.UNSIGNED)]


@pytest.mark.parametrize("bits,enc", CASES)
@pytest.mark.parametrize("n", [1, 3, 8, 13])
def test_pack_unpack_match_reference(bits, enc, n):
    lo, hi = numerics.value_range(bits, enc)
    rng = np.random.default_rng(bits * 100 + n)
    v = rng.integers(lo, hi + 1, size=(5, n), dtype=np.int64, endpoint=False)
    if enc is Encoding.ODD:
        v = 2 * rng.integers(0, 1 << bits, size=(5, n)) - ((1 << bits) - 1)
    v[0, 0], v[-1, -1] = lo, hi
    blob = pack_rows(v, bits, enc)
    assert blob == _reference_pack(v, bits, enc)
    np.testing.assert_array_equal(unpack_rows(blob, 5, n, bits, enc), v)
    if bits <= 24:
        got = unpack_rows(blob, 5, n, bits, enc, dtype=np.float32)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.astype(np.int64), v)


def test_param_records_layout_and_round_trip():
    import struct

    from bitmill.packing import param_records, read_param_records
    m, n, b = [1, -32768, 32767], [0, 5, 62], [0, -(2 ** 62), 2 ** 62 - 1]
    blob = param_records(m, n, b)
    assert blob == b"".join(struct.pack("<hB5xq", *r) for r in zip(m, n, b))
    for got, want in zip(read_param_records(blob, 3), (m, n, b)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="int16"):
        param_records([40000], [0], [0])
