"""QIL (Jung et al., CVPR 2019): learned quantization intervals.

Transformer then discretizer ``v_bar = round(v_hat*q)/q``. Weights (``q = 2^(b-1)-1``, so at
least 2 bits; 2 bits is ternary), with centre ``c``, half-width ``d``, power ``gamma`` and
``u = (|w| - c + d) / (2d)``: ``w_hat = 0`` for ``u <= 0`` (pruned), ``sign(w)`` for ``u >= 1``
(clipped), ``sign(w)*u^gamma`` otherwise. Activations: the same with ``gamma = 1`` and no sign,
``q = 2^b-1``. Gradients are those of this forward (autograd through masks), matching the
closed forms in the design notes. ``constrain`` projects onto ``d > 0``, ``c - d >= 0`` and
``gamma > 0``. Interval parameters train at 1/100 of the weight learning rate (from a
reimplementation; the paper's values are unconfirmed).
"""

from __future__ import annotations

import torch
from torch import nn

from bitmill.numerics import Encoding
from bitmill.models.quantizer import (ActQuantizer, Affine, Quantized, WeightQuantizer,
                                      round_ste)

EPS = 1e-6
LR_FACTOR = 0.01


def _interval(v: torch.Tensor, c: torch.Tensor, d: torch.Tensor, gamma: torch.Tensor | None):
    """Transformer output in [0, 1] of ``v >= 0`` for interval (c, d) and power gamma."""
    u = (v - c + d) / (2 * d)
    inside = (u > 0) & (u < 1)
    u_safe = torch.where(inside, u, torch.full_like(u, 0.5))
    core = u_safe if gamma is None else u_safe ** gamma
    return torch.where(inside, core, (u >= 1).to(v.dtype))


class _QILParams(nn.Module):
    def _init_interval(self, top: float) -> None:
        with torch.no_grad():
            self.c.fill_(max(top, EPS) / 2)
            self.d.fill_(max(top, EPS) / 2)
            self.initialized.fill_(True)

    def constrain(self) -> None:
        """Euclidean projection onto ``d >= EPS``, ``c - d >= 0``: when the step left the region,
        ``c`` and ``d`` meet at their mean, which keeps the clipping point ``c + d`` (moving ``c`` up
        to ``d`` instead lets the interval run away and prune whole layers)."""
        with torch.no_grad():
            mean = (self.c + self.d) / 2
            bad = self.c < self.d
            self.c.copy_(torch.where(bad, mean, self.c))
            self.d.copy_(torch.where(bad, mean, self.d))
            self.d.clamp_(min=EPS)
            self.c.copy_(torch.maximum(self.c, self.d))
            if hasattr(self, "gamma"):
                self.gamma.clamp_(min=0.1)

    lr_factor = LR_FACTOR


class QILWeight(_QILParams, WeightQuantizer):
    method = "qil"
    min_bits = 2

    def __init__(self, bits: int):
        WeightQuantizer.__init__(self, bits)
        self.c = nn.Parameter(torch.tensor(0.5))
        self.d = nn.Parameter(torch.tensor(0.5))
        self.gamma = nn.Parameter(torch.tensor(1.0))

    @property
    def encoding(self) -> Encoding:
        return Encoding.SIGNED

    @property
    def levels(self) -> int:
        return 2 ** (self.bits - 1) - 1

    def transform(self, w: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            self._init_interval(float(w.detach().abs().max()))
        return torch.sign(w) * _interval(w.abs(), self.c, self.d, self.gamma)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        q = self.levels
        return round_ste(self.transform(w) * q) / q

    def quantize(self, w: torch.Tensor) -> Quantized:
        with torch.no_grad():
            codes = torch.round(self.transform(w) * self.levels).to(torch.int64)
        return Quantized(codes, 1.0 / self.levels, self.bits, self.encoding)


class QILAct(_QILParams, ActQuantizer):
    method = "qil"

    def __init__(self, bits: int, signed: bool = False):
        if signed:
            raise ValueError("QIL activations are unsigned (they follow a ReLU)")
        ActQuantizer.__init__(self, bits, signed)
        self.c = nn.Parameter(torch.tensor(1.0))
        self.d = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not bool(self.initialized):
            self._init_interval(float(torch.quantile(x.detach().flatten()[:100000].float(), 0.999)))
        q = 2 ** self.bits - 1
        return round_ste(_interval(x, self.c, self.d, None) * q) / q

    def affine(self) -> Affine:
        q = 2 ** self.bits - 1
        c, d = float(self.c.detach()), float(self.d.detach())
        return Affine(q / (2 * d), -(c - d) * q / (2 * d), 1.0 / q, self.bits, self.encoding)
