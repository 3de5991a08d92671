"""Integer numerics shared by the golden model, the simulators, the RTL and torch export.

Encodings of a ``b``-bit integer code:

* ``signed``:   two's complement, values ``-2^(b-1) .. 2^(b-1)-1``
* ``unsigned``: values ``0 .. 2^b-1``
* ``odd``:      the zero-less grid ``2j - (2^b-1)`` for ``j`` in ``0 .. 2^b-1``, i.e. the odd
  integers ``-(2^b-1) .. 2^b-1`` (SAWB, DoReFa, DAQ weights). Hardware runs it as bipolar
  bit-planes, so it costs ``b`` planes, not ``b+1``.

Requantization (one rule, used everywhere)::

    out = clamp(round_shift(acc * M + B, n), lo, hi)
    round_shift(x, n) = floor((x + 2^(n-1)) / 2^n)   for n > 0;  x for n = 0

i.e. round half toward +infinity: an arithmetic right shift after adding half an output step,
which is one adder and a shift in hardware. ``M`` (multiplier) and ``n`` (shift) are per output
channel; ``B`` is the bias at the scale of ``acc * M`` (conv bias and BatchNorm shift fold here).
``lo, hi`` is the output range of the output encoding, raised to ``lo = max(lo, 0)`` by ReLU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from amaranth.lib import enum

from bitmill.errors import NumericsError
from bitmill.precision import MAX_RUNTIME_BITS

MAX_BITS = 32          # widest tensor code the IR admits (logits, residual streams)
MULT_BITS = 16         # requant multipliers are signed 16-bit integers
MAX_SHIFT = 62         # largest requant right shift
FLOAT32_EXACT = 1 << 24   # float32 holds every integer of at most this magnitude exactly
FLOAT64_EXACT = 1 << 53   # float64 likewise


class Encoding(enum.Enum, shape=2):
    """How a ``b``-bit code maps to an integer value; the one encoding type of the IR, the
    numerics, the ISA (`bitmill.isa.Setup`, `bitmill.isa.Vec`), the simulators and the RTL
    (a 2-bit field). Text names it by `label` (``"signed"``, ``"unsigned"``, ``"odd"``, as in
    ``graph.json``); ``Encoding("signed")`` (any case) reads it back."""

    SIGNED = 1      # two's complement: the MSB plane is negative
    UNSIGNED = 0
    ODD = 2         # odd grid: every plane is bipolar (+1/-1)

    @classmethod
    def _missing_(cls, value):
        if isinstance(value, str):
            for member in cls:
                if member.label == value.lower():
                    return member
        return None

    @property
    def label(self) -> str:
        """The encoding's name as text: ``"signed"``, ``"unsigned"`` or ``"odd"``."""
        return self.name.lower()

    def __str__(self) -> str:
        return self.label


def _check_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= MAX_BITS:
        raise NumericsError(f"bits must be an integer in 1..{MAX_BITS}, not {bits!r}")


def value_range(bits: int, encoding: Encoding | str) -> tuple[int, int]:
    """Smallest and largest integer value of a ``bits``-bit code in ``encoding``."""
    _check_bits(bits)
    enc = Encoding(encoding)
    if enc is Encoding.SIGNED:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if enc is Encoding.UNSIGNED:
        return 0, (1 << bits) - 1
    top = (1 << bits) - 1
    return -top, top


def max_abs(bits: int, encoding: Encoding | str) -> int:
    """Largest magnitude of a value of this grid."""
    lo, hi = value_range(bits, encoding)
    return max(-lo, hi)


def on_grid(values: np.ndarray, bits: int, encoding: Encoding | str) -> bool:
    """Whether every value lies on the integer grid of (``bits``, ``encoding``)."""
    lo, hi = value_range(bits, encoding)
    values = np.asarray(values)
    if values.size == 0:
        return True
    if not np.issubdtype(values.dtype, np.integer):
        return False
    if values.min() < lo or values.max() > hi:
        return False
    if Encoding(encoding) is Encoding.ODD and np.any(values % 2 == 0):
        return False
    return True


def grid_values(bits: int, encoding: Encoding | str) -> np.ndarray:
    """All values of the grid, ascending."""
    lo, hi = value_range(bits, encoding)
    step = 2 if Encoding(encoding) is Encoding.ODD else 1
    return np.arange(lo, hi + 1, step, dtype=np.int64)


def accumulator_bound(k: int, w_bits: int, w_enc: Encoding | str,
                      a_bits: int, a_enc: Encoding | str) -> int:
    """Largest ``|sum|`` of ``k`` products of a weight and an activation: ``k*max|w|*max|a|``.

    Every partial sum of such a dot product is bounded by it too, in any order.
    """
    if k < 0:
        raise NumericsError(f"dot-product length must be >= 0, not {k}")
    return k * max_abs(w_bits, w_enc) * max_abs(a_bits, a_enc)


def signed_bits_for(bound: int) -> int:
    """Two's complement width that holds every integer in ``[-bound, bound]``."""
    return int(bound).bit_length() + 1


def accumulator_bits(k: int, w_bits: int, w_enc: Encoding | str,
                     a_bits: int, a_enc: Encoding | str) -> int:
    """Accumulator width proven sufficient for a ``k``-term dot product."""
    return signed_bits_for(accumulator_bound(k, w_bits, w_enc, a_bits, a_enc))



def accumulator_width(max_k_total: int) -> int:
    """Accumulator width for dot products of up to ``max_k_total`` terms, every precision.

    The bit-serial accumulator holds, at every step, a signed sum of plane popcounts weighted
    by ``2^(i+j-s)``; its magnitude is at most ``K_total * (2^8-1)^2``, the bound of an
    8-bit unsigned x 8-bit unsigned dot product. That bound also covers every final result
    (signed, odd-grid and unsigned operands: ``|w|, |a| <= 255``) and the bit-parallel
    products, so one width serves both families.
    """
    if isinstance(max_k_total, bool) or not isinstance(max_k_total, int) or max_k_total < 1:
        raise ValueError(f"max_k_total must be a positive integer, not {max_k_total!r}")
    return accumulator_bits(max_k_total, MAX_RUNTIME_BITS, Encoding.UNSIGNED,
                            MAX_RUNTIME_BITS, Encoding.UNSIGNED)


def max_k_total_for(acc_bits: int) -> int:
    """Largest ``K_total`` whose accumulator fits in ``acc_bits`` bits."""
    limit = (1 << (acc_bits - 1)) - 1
    return limit // ((1 << MAX_RUNTIME_BITS) - 1) ** 2


# ---- requantization --------------------------------------------------------------------------

def round_shift(x: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """``floor((x + 2^(n-1)) / 2^n)`` elementwise on int64 (``x`` for ``n = 0``)."""
    x = np.asarray(x, dtype=np.int64)
    n = np.asarray(shift, dtype=np.int64)
    half = np.where(n > 0, np.left_shift(np.int64(1), np.maximum(n - 1, 0)), 0)
    return np.right_shift(x + half, n)


def requantize(acc: np.ndarray, multiplier: np.ndarray, bias: np.ndarray, shift: np.ndarray,
               out_range: tuple[int, int], channel_axis: int = 1) -> np.ndarray:
    """Apply ``clamp(round_shift(acc*M + B, n), lo, hi)`` with per-channel ``M, B, n``.

    ``acc`` is int64 (or exact integers in float); the per-channel arrays broadcast along
    ``channel_axis``. The caller guarantees ``|acc*M + B| < 2^62`` (see `requant_fits`).
    """
    acc = np.asarray(acc)
    if acc.dtype != np.int64:
        acc = acc.astype(np.int64)
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    m = np.asarray(multiplier, dtype=np.int64).reshape(shape)
    b = np.asarray(bias, dtype=np.int64).reshape(shape)
    n = np.asarray(shift, dtype=np.int64).reshape(shape)
    out = round_shift(acc * m + b, n)
    lo, hi = out_range
    return np.clip(out, lo, hi)


def requant_float_exact(acc_bound: int, multiplier: np.ndarray, bias: np.ndarray,
                        shift: np.ndarray) -> bool:
    """Whether `requantize_float` is exact: ``|acc*M + B| + 2^(n-1) < 2^53`` for
    ``|acc| <= acc_bound`` (all intermediates are then integers that float64 holds exactly)."""
    m = int(np.max(np.abs(np.asarray(multiplier, dtype=np.int64)), initial=0))
    b = int(np.max(np.abs(np.asarray(bias, dtype=np.int64)), initial=0))
    n = int(np.max(np.asarray(shift, dtype=np.int64), initial=0))
    return acc_bound * m + b + (1 << max(n - 1, 0)) < FLOAT64_EXACT


def requantize_float(acc: np.ndarray, multiplier: np.ndarray, bias: np.ndarray,
                     shift: np.ndarray, out_range: tuple[int, int]) -> np.ndarray:
    """`requantize` along the last axis in float64; bit-identical to it when
    `requant_float_exact` holds (every intermediate is an integer below 2^53, the scaling by
    ``2^-n`` is exact and ``floor`` is exact). Returns float64 holding the integers."""
    m = np.asarray(multiplier, dtype=np.float64)
    n = np.asarray(shift, dtype=np.int64)
    half = np.where(n > 0, np.ldexp(1.0, np.maximum(n - 1, 0)), 0.0)
    y = np.multiply(acc, m, dtype=np.float64)
    y += np.asarray(bias, dtype=np.float64) + half
    y *= np.ldexp(1.0, -n)
    np.floor(y, out=y)
    return np.clip(y, out_range[0], out_range[1], out=y)


def requantize_exact(acc: np.ndarray, multiplier: np.ndarray, bias: np.ndarray, shift: np.ndarray,
                     acc_bound: int, out_range: tuple[int, int]) -> np.ndarray:
    """`requantize` along the last axis for accumulators bounded by ``|acc| <= acc_bound``
    (exact integers, float or int64): in float64 when `requant_float_exact` proves it exact, else
    in int64. Returns float64 holding the integers, bit-identical either way."""
    if requant_float_exact(acc_bound, multiplier, bias, shift):
        return requantize_float(acc, multiplier, bias, shift, out_range)
    return requantize(acc, multiplier, bias, shift, out_range, channel_axis=-1).astype(np.float64)


def value_dtype(bits: int) -> type:
    """Float dtype that holds every value of a ``bits``-bit code exactly, in any encoding
    (float32 up to 24 bits, float64 beyond): the simulators compute on these."""
    _check_bits(bits)
    return np.float32 if bits <= 24 else np.float64


def requant_fits(acc_bound: int, multiplier: np.ndarray, bias: np.ndarray) -> bool:
    """Whether ``|acc*M + B|`` (plus rounding half) stays below 2^62 for ``|acc| <= acc_bound``."""
    m = int(np.max(np.abs(np.asarray(multiplier, dtype=np.int64)), initial=0))
    b = int(np.max(np.abs(np.asarray(bias, dtype=np.int64)), initial=0))
    return acc_bound * m + b + (1 << (MAX_SHIFT - 1)) < (1 << 63)


@dataclass(frozen=True)
class FixedPoint:
    """A real scale approximated as ``multiplier / 2^shift``."""

    multiplier: int
    shift: int

    @property
    def value(self) -> float:
        return self.multiplier / float(1 << self.shift)


def quantize_scale(scale: float, mult_bits: int = MULT_BITS, max_shift: int = MAX_SHIFT) -> FixedPoint:
    """Approximate a real ``scale`` by ``M / 2^n`` with a signed ``mult_bits``-bit ``M``.

    Precision: when ``|scale| >= 2^(p-1-max_shift)`` with ``p = mult_bits-1``, ``|M|`` is
    normalised into ``[2^(p-1), 2^p)`` and the relative error is at most ``2^-p`` (2^-15 for
    16-bit multipliers). Smaller scales use ``n = max_shift`` with absolute error at most
    ``2^-(max_shift+1)``. ``|scale| >= 2^p - 0.5`` cannot be represented with ``n >= 0``.
    """
    if not math.isfinite(scale):
        raise NumericsError(f"requant scale must be a finite number, not {scale}")
    p = mult_bits - 1
    if abs(scale) >= (1 << p) - 0.5:
        raise NumericsError(f"requant scale {scale:g} too large: must be below {(1 << p) - 0.5:g} "
                            f"for a {mult_bits}-bit multiplier")
    if scale == 0.0:
        return FixedPoint(0, 0)
    mag = abs(scale)
    # smallest shift n so that mag * 2^n >= 2^(p-1), capped at max_shift
    n = p - 1 - math.frexp(mag)[1] + 1
    n = min(max(n, 0), max_shift)
    m = round(mag * (1 << n)) if n < 1023 else 0
    if m >= (1 << p):          # rounding carried into the next power of two
        if n > 0:
            n -= 1
            m = round(mag * (1 << n))
        else:
            m = (1 << p) - 1
    return FixedPoint(int(m if scale > 0 else -m), int(n))


def quantize_scales(scales: np.ndarray, mult_bits: int = MULT_BITS) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel `quantize_scale`: arrays of multipliers and shifts (int64)."""
    fps = [quantize_scale(float(s), mult_bits) for s in np.ravel(scales)]
    return (np.array([f.multiplier for f in fps], dtype=np.int64),
            np.array([f.shift for f in fps], dtype=np.int64))


def add_multipliers(scale_a: float, scale_b: float) -> tuple[int, int, int]:
    """Integer multipliers and the shared shift of a residual add whose operands enter the
    output grid with real scales ``scale_a`` and ``scale_b``: ``(M_a, M_b, n)`` with
    ``M_x / 2^n ~ scale_x``; the larger scale sets ``n`` (`quantize_scale`), the smaller is
    rounded on the same shift."""
    big = quantize_scale(max(abs(scale_a), abs(scale_b)))
    return (int(round(scale_a * 2.0 ** big.shift)), int(round(scale_b * 2.0 ** big.shift)),
            big.shift)
