"""Small products in logic: a product of a value and a narrow factor as a sum of shifted
copies, so that synthesis does not send it through a DSP block (on ECP5 a MULT18X18D in a
loop costs several nanoseconds of routing in and out)."""

from __future__ import annotations

from amaranth import Const, Value


def shift_add(value, factor) -> Value:
    """``value * factor`` for unsigned ``value`` and an unsigned ``factor`` of a few bits: one
    shifted copy of ``value`` per bit of ``factor``, added as a balanced tree."""
    value, factor = Value.cast(value), Value.cast(factor)
    if factor.shape().signed or value.shape().signed:
        raise ValueError("shift_add takes unsigned operands")
    terms = [(value << i) & (factor[i].replicate(len(value) + i)) for i in range(len(factor))]
    return balanced(terms, lambda a, b: a + b)


def balanced(terms, combine) -> Value:
    """``terms`` combined pairwise as a balanced tree (``Const(0, 1)`` when there are none)."""
    terms = list(terms)
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        terms = [combine(terms[i], terms[i + 1]) if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]
