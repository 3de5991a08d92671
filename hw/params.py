"""Constructor-parameter validation and the accumulator-width proof shared by the hw blocks."""

from __future__ import annotations

from bitmill.config import PE_FAMILIES
from bitmill.numerics import Encoding, accumulator_bits
from bitmill.precision import MAX_RUNTIME_BITS

VALUE_BITS = MAX_RUNTIME_BITS + 1   # bit-parallel operands: every grid value fits this signed width


def check_positive(name: str, value: object, upper: int | None = None) -> int:
    """``value`` as an int, or ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if upper is not None and value > upper:
        raise ValueError(f"{name} must be at most {upper}, not {value}")
    return value


def check_family(family: object) -> str:
    """``family`` if it names a PE family."""
    if family not in PE_FAMILIES:
        raise ValueError(f"family must be one of {', '.join(PE_FAMILIES)}, not {family!r}")
    return family


def accumulator_width(max_k_total: int) -> int:
    """Accumulator width for dot products of up to ``max_k_total`` terms, every precision.

    The bit-serial accumulator holds, at every step, a signed sum of plane popcounts weighted
    by ``2^(i+j-s)``; its magnitude is at most ``K_total * (2^8-1)^2``, the bound of an
    8-bit unsigned x 8-bit unsigned dot product. That bound also covers every final result
    (signed, odd-grid and unsigned operands: ``|w|, |a| <= 255``) and the bit-parallel
    products, so one width serves both families.
    """
    check_positive("max_k_total", max_k_total)
    return accumulator_bits(max_k_total, MAX_RUNTIME_BITS, Encoding.UNSIGNED,
                            MAX_RUNTIME_BITS, Encoding.UNSIGNED)


def max_k_total_for(acc_bits: int) -> int:
    """Largest ``K_total`` whose accumulator fits in ``acc_bits`` bits."""
    limit = (1 << (acc_bits - 1)) - 1
    return limit // ((1 << MAX_RUNTIME_BITS) - 1) ** 2
