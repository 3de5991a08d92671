"""Numerics against exact rational arithmetic."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bitmill import numerics
from bitmill.errors import NumericsError
from bitmill.numerics import Encoding

ENCODINGS = list(Encoding)


@pytest.mark.parametrize("enc", ENCODINGS)
@pytest.mark.parametrize("bits", range(1, 9))
def test_grid_matches_definition(bits, enc):
    grid = numerics.grid_values(bits, enc)
    if enc is Encoding.SIGNED:
        expect = list(range(-2 ** (bits - 1), 2 ** (bits - 1)))
    elif enc is Encoding.UNSIGNED:
        expect = list(range(2 ** bits))
    else:
        expect = [2 * j - (2 ** bits - 1) for j in range(2 ** bits)]
    assert grid.tolist() == expect
    assert len(grid) == 2 ** bits        # every grid has exactly 2^b codes
    assert numerics.on_grid(grid, bits, enc)
    lo, hi = numerics.value_range(bits, enc)
    assert not numerics.on_grid(np.array([hi + 1]), bits, enc)
    assert not numerics.on_grid(np.array([lo - 1]), bits, enc)


def test_odd_grid_rejects_even_and_bits_validated():
    assert not numerics.on_grid(np.array([0]), 2, "odd")
    assert numerics.value_range(2, "odd") == (-3, 3)
    with pytest.raises(NumericsError, match="bits must be an integer in 1..32, not 0"):
        numerics.value_range(0, "signed")


def _ref_requant(acc, m, b, n, lo, hi):
    """Exact: clamp(floor((acc*m + b)/2^n + 1/2)) with rationals."""
    v = Fraction(acc * m + b, 2 ** n)
    return min(max(math.floor(v + Fraction(1, 2)), lo), hi)


requant_case = st.tuples(
    st.integers(-2 ** 31, 2 ** 31),        # acc
    st.integers(-2 ** 15, 2 ** 15 - 1),    # multiplier
    st.integers(-2 ** 40, 2 ** 40),        # bias
    st.integers(0, 40),                    # shift
    st.integers(1, 16), st.sampled_from([Encoding.SIGNED, Encoding.UNSIGNED]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(requant_case, min_size=1, max_size=16))
def test_requantize_equals_rational_reference(cases):
    for acc, m, b, n, bits, enc in cases:
        lo, hi = numerics.value_range(bits, enc)
        got = numerics.requantize(np.array([[acc]]), [m], [b], [n], (lo, hi))
        assert int(got[0, 0]) == _ref_requant(acc, m, b, n, lo, hi)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-2 ** 24, 2 ** 24), st.integers(-2 ** 15, 2 ** 15 - 1),
                          st.integers(-2 ** 30, 2 ** 30), st.integers(0, 12)),
                min_size=1, max_size=8),
       st.integers(1, 12), st.sampled_from([Encoding.SIGNED, Encoding.UNSIGNED]))
def test_float_requant_is_bit_identical_when_proven_exact(cases, bits, enc):
    acc = np.array([[c[0] for c in cases]])
    m, b, n = (np.array([c[i] for c in cases]) for i in (1, 2, 3))
    assert numerics.requant_float_exact(2 ** 24, m, b, n)
    rng = numerics.value_range(bits, enc)
    exact = numerics.requantize(acc, m, b, n, rng, channel_axis=-1)
    fast = numerics.requantize_float(acc.astype(np.float64), m, b, n, rng)
    np.testing.assert_array_equal(fast.astype(np.int64), exact)
    for (a, mi, bi, ni), e in zip(cases, exact[0]):
        assert e == _ref_requant(a, mi, bi, ni, *rng)


def test_round_half_goes_up():
    assert numerics.round_shift(np.array([1, 2, 3, -1, -2, -3]), 1).tolist() == [1, 1, 2, 0, -1, -1]
    assert numerics.round_shift(np.array([5, -5]), 0).tolist() == [5, -5]


@settings(max_examples=500, deadline=None)
@given(st.floats(min_value=1e-9, max_value=32000.0) | st.floats(min_value=-32000.0, max_value=-1e-9))
def test_quantize_scale_precision(scale):
    fp = numerics.quantize_scale(scale)
    assert -2 ** 15 <= fp.multiplier < 2 ** 15 and 0 <= fp.shift <= numerics.MAX_SHIFT
    err = abs(Fraction(fp.multiplier, 2 ** fp.shift) - Fraction(scale)) / abs(Fraction(scale))
    assert err <= Fraction(1, 2 ** 15)
    assert abs(fp.multiplier) >= 2 ** 14 or fp.shift == 0


def test_quantize_scale_edges():
    assert numerics.quantize_scale(0.0) == numerics.FixedPoint(0, 0)
    tiny = numerics.quantize_scale(1e-30)
    assert tiny.shift == numerics.MAX_SHIFT
    with pytest.raises(NumericsError, match="too large"):
        numerics.quantize_scale(40000.0)
    with pytest.raises(NumericsError, match="finite"):
        numerics.quantize_scale(float("nan"))


@pytest.mark.parametrize("w_enc", ENCODINGS)
@pytest.mark.parametrize("a_enc", [Encoding.SIGNED, Encoding.UNSIGNED])
@pytest.mark.parametrize("wb,ab", [(1, 1), (2, 3), (4, 4), (8, 8), (3, 7)])
def test_accumulator_bound_is_attained_and_fits(w_enc, a_enc, wb, ab):
    k = 37
    bound = numerics.accumulator_bound(k, wb, w_enc, ab, a_enc)
    wg, ag = numerics.grid_values(wb, w_enc), numerics.grid_values(ab, a_enc)
    attained = k * max(abs(int(w) * int(a)) for w in wg for a in ag)
    assert bound == attained
    bits = numerics.accumulator_bits(k, wb, w_enc, ab, a_enc)
    assert -(2 ** (bits - 1)) <= -bound and bound <= 2 ** (bits - 1) - 1
    assert bound > 2 ** (bits - 2) - 1 or bits == 2     # and no bit wasted


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-2 ** 31, 2 ** 31), st.integers(-2 ** 15, 2 ** 15 - 1),
                          st.integers(-2 ** 40, 2 ** 40), st.integers(0, 40)), min_size=1, max_size=8),
       st.sampled_from([2 ** 20, 2 ** 31]))
def test_requantize_exact_equals_the_integer_rule_on_either_path(cases, bound):
    acc = np.array([[min(max(c[0], -bound), bound) for c in cases]])
    m, b, n = (np.array([c[i] for c in cases]) for i in (1, 2, 3))
    rng = numerics.value_range(8, Encoding.SIGNED)
    got = numerics.requantize_exact(acc.astype(np.float64), m, b, n, bound, rng)
    assert got.dtype == np.float64
    assert np.array_equal(got.astype(np.int64), numerics.requantize(acc, m, b, n, rng, channel_axis=-1))


def test_value_dtype_holds_every_code_exactly():
    for bits in (1, 8, 24, 25, 32):
        dt = numerics.value_dtype(bits)
        assert dt == (np.float32 if bits <= 24 else np.float64)
        for enc in Encoding:
            lo, hi = numerics.value_range(bits, enc)
            assert int(dt(lo)) == lo and int(dt(hi)) == hi and int(dt(hi - 1)) == hi - 1
    assert float(np.float32(2 ** 24 + 1)) != 2 ** 24 + 1        # 25 bits no longer fit float32
    with pytest.raises(NumericsError):
        numerics.value_dtype(33)
