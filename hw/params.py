"""Constructor-parameter validation shared by the hw blocks."""

from __future__ import annotations

from bitmill.config import PE_FAMILIES
from bitmill.numerics import accumulator_width, max_k_total_for  # noqa: F401  (re-exported)
from bitmill.precision import VALUE_BITS  # noqa: F401  (re-exported)


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
