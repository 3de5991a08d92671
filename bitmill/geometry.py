"""Geometry of tensors stored NHWC and of bands of image rows (a leaf shared by lowering, code
generation and the functional simulator).

A tensor of shape ``(C, H, W)`` is stored as ``H`` rows of ``W*C`` codes (one image row each); a
vector ``(F,)`` as one row of ``F`` codes. A layer runs band by band: a band is a run of
consecutive output rows; the input rows it reads follow from the layer's `Window` (kernel rows,
stride, zero padding), clipped to the input image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def nhwc_rows(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, codes per row) of a tensor of IR shape ``(C, H, W)`` or ``(F,)`` stored NHWC."""
    if len(shape) == 1:
        return 1, shape[0]
    if len(shape) == 3:
        return shape[1], shape[2] * shape[0]
    raise ValueError(f"a stored tensor has shape (C, H, W) or (F,), not {tuple(shape)}")


def to_nhwc_rows(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A tensor of IR shape ``shape`` as its stored (rows, codes per row) array."""
    x = np.asarray(x).reshape(shape)
    rows = x.transpose(1, 2, 0) if len(shape) == 3 else x
    return rows.reshape(nhwc_rows(shape))


def from_nhwc_rows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of `to_nhwc_rows`: stored rows back in the IR's ``(C, H, W)`` or ``(F,)`` layout."""
    if len(shape) == 3:
        return np.asarray(rows).reshape(shape[1], shape[2], shape[0]).transpose(2, 0, 1)
    return np.asarray(rows).reshape(shape)


@dataclass(frozen=True)
class Window:
    """The input rows an output row reads: ``kernel`` rows from ``row * stride - pad``
    (``Window()`` for dense and elementwise layers: output row ``y`` reads input row ``y``)."""

    kernel: int = 1
    stride: int = 1
    pad: int = 0

    def __post_init__(self) -> None:
        for name, low in (("kernel", 1), ("stride", 1), ("pad", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"window {name} must be an integer >= {low}, not {v!r}")

    def top(self, y0: int) -> int:
        """First (padded) input row of output row ``y0``; negative inside the top padding."""
        return y0 * self.stride - self.pad

    def span(self, out_rows: int) -> int:
        """Padded input rows that ``out_rows`` consecutive output rows read."""
        return (out_rows - 1) * self.stride + self.kernel

    def slot_rows(self, out_rows: int, in_h: int) -> int:
        """Most input rows a band of ``out_rows`` output rows holds in a buffer slot."""
        return min(in_h, self.span(out_rows))

    def input_rows(self, y0: int, y1: int, in_h: int) -> tuple[int, int]:
        """Input rows ``[r0, r1)`` that output rows ``[y0, y1)`` read, clipped to the image."""
        return max(0, self.top(y0)), min(in_h, self.top(y1 - 1) + self.kernel)


@dataclass(frozen=True)
class Band:
    """Output rows ``[y0, y1)`` and the input rows ``[r0, r1)`` they read."""

    y0: int
    y1: int
    r0: int
    r1: int

    @property
    def rows(self) -> int:
        return self.y1 - self.y0

    @property
    def in_rows(self) -> int:
        return self.r1 - self.r0


def band_count(out_h: int, band_rows: int) -> int:
    """Bands of ``band_rows`` output rows (the last may be shorter) over ``out_h`` rows."""
    return -(-out_h // band_rows)


def bands(out_h: int, band_rows: int, window: Window, in_h: int) -> tuple[Band, ...]:
    """Every band of ``band_rows`` output rows over ``out_h`` rows, in order."""
    if band_rows < 1 or out_h < 1:
        raise ValueError(f"need out_h >= 1 and band_rows >= 1, not {out_h} and {band_rows}")
    out = []
    for y0 in range(0, out_h, band_rows):
        y1 = min(out_h, y0 + band_rows)
        out.append(Band(y0, y1, *window.input_rows(y0, y1, in_h)))
    return tuple(out)
