"""Layer precision as users write it: ``w4a4`` (weight bits, activation bits).

`parse_bits` is the one parser of that notation; the bits of a layer that runs on the MAC
array lie in ``1..MAX_RUNTIME_BITS``.
"""

from __future__ import annotations

import re

from bitmill.errors import BitmillError

MAX_RUNTIME_BITS = 8          # weight and activation bit-widths the MAC arrays run at runtime
VALUE_BITS = MAX_RUNTIME_BITS + 1   # bit-parallel operands: every grid value fits this signed width

_NOTATION = re.compile(r"w(\d+)a(\d+)")


def check_runtime_bits(name: str, value, error: type[BitmillError] = BitmillError) -> int:
    """``value`` if it is an integer bit-width in 1..MAX_RUNTIME_BITS, else ``error``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RUNTIME_BITS:
        raise error(f"{name} must be an integer in 1..{MAX_RUNTIME_BITS}, not {value!r}")
    return value


def split_bits(text: str, where: str = "bits", error: type[BitmillError] = BitmillError) -> tuple[int, int]:
    """``"w4a4"`` -> (4, 4), the notation only (the range is the caller's to check)."""
    m = _NOTATION.fullmatch(text.strip().lower()) if isinstance(text, str) else None
    if not m:
        raise error(f"{where} must look like w4a4 (weight bits, activation bits in "
                    f"1..{MAX_RUNTIME_BITS}), not {text!r}")
    return int(m.group(1)), int(m.group(2))


def parse_bits(text: str, where: str = "bits", error: type[BitmillError] = BitmillError) -> tuple[int, int]:
    """``"w4a4"`` -> (4, 4): weight and activation bits, each in 1..MAX_RUNTIME_BITS."""
    w, a = split_bits(text, where, error)
    return (check_runtime_bits(f"{where}: weight bits", w, error),
            check_runtime_bits(f"{where}: activation bits", a, error))


def format_bits(w_bits: int, a_bits: int) -> str:
    """(4, 4) -> ``"w4a4"``."""
    return f"w{w_bits}a{a_bits}"
