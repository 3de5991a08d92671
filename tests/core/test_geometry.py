"""NHWC rows of stored tensors, windows and bands of image rows."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bitmill.geometry import Band, Window, band_count, bands, from_nhwc_rows, nhwc_rows, to_nhwc_rows


def test_nhwc_rows_of_images_and_vectors():
    assert nhwc_rows((3, 5, 7)) == (5, 21)
    assert nhwc_rows((10,)) == (1, 10)
    with pytest.raises(ValueError, match=r"\(C, H, W\) or \(F,\), not \(2, 3\)"):
        nhwc_rows((2, 3))


def test_stored_rows_hold_one_image_row_of_channels_each():
    x = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    rows = to_nhwc_rows(x, (2, 3, 4))
    assert rows.shape == (3, 8)
    for c in range(2):
        for h in range(3):
            for w in range(4):
                assert rows[h, w * 2 + c] == x[c, h, w]
    assert np.array_equal(from_nhwc_rows(rows, (2, 3, 4)), x)
    v = np.arange(5)
    assert np.array_equal(to_nhwc_rows(v, (5,)), v[None])
    assert np.array_equal(from_nhwc_rows(to_nhwc_rows(v, (5,)), (5,)), v)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 7), st.integers(1, 3), st.integers(0, 3), st.integers(1, 20), st.data())
def test_band_input_rows_are_the_rows_its_windows_touch(kernel, stride, pad, in_h, data):
    pad = min(pad, kernel - 1)                    # the IR's windows pad less than a kernel
    w = Window(kernel, stride, pad)
    out_h = max(1, (in_h + 2 * pad - kernel) // stride + 1)
    y0 = data.draw(st.integers(0, out_h - 1))
    y1 = data.draw(st.integers(y0 + 1, out_h))
    touched = [y * stride - pad + k for y in range(y0, y1) for k in range(kernel)]
    assert w.span(y1 - y0) == max(touched) - min(touched) + 1
    assert w.top(y0) == min(touched)
    inside = [r for r in touched if 0 <= r < in_h]
    r0, r1 = w.input_rows(y0, y1, in_h)
    assert (r0, r1) == (min(inside), max(inside) + 1)
    assert r1 - r0 <= w.slot_rows(y1 - y0, in_h)


def test_bands_split_the_output_rows_in_order():
    got = bands(7, 3, Window(3, 2, 1), 14)
    assert got == (Band(0, 3, 0, 6), Band(3, 6, 5, 12), Band(6, 7, 11, 14))
    assert [b.rows for b in got] == [3, 3, 1] and [b.in_rows for b in got] == [6, 7, 3]
    assert band_count(7, 3) == 3 and band_count(6, 3) == 2
    assert bands(4, 4, Window(), 4) == (Band(0, 4, 0, 4),)


def test_window_and_band_parameters_are_validated():
    with pytest.raises(ValueError, match="window kernel must be an integer >= 1, not 0"):
        Window(0)
    with pytest.raises(ValueError, match="window pad must be an integer >= 0, not -1"):
        Window(3, 1, -1)
    with pytest.raises(ValueError, match="band_rows >= 1"):
        bands(4, 0, Window(), 4)
