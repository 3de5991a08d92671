"""LSQ (Esser et al., ICLR 2020): learned step size for weights and activations.

``v_bar = round(clip(v/s, -Q_N, Q_P))``, ``v_hat = v_bar * s``; the step's gradient is
scaled by ``g = 1/sqrt(N * Q_P)``; ``s`` starts at ``2*mean|v|/sqrt(Q_P)`` (weights: from the
tensor, activations: from the first batch). Weights are signed (``Q_N = 2^(b-1)``,
``Q_P = 2^(b-1)-1``, at least 2 bits: a 1-bit signed grid has no positive level);
activations unsigned (``Q_N = 0``, ``Q_P = 2^b-1``) or signed for residual streams.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bitmill.numerics import Encoding
from bitmill.models.quantizer import (ActQuantizer, Affine, Quantized, WeightQuantizer,
                                      grad_scale, round_ste)


def _lsq(v: torch.Tensor, s: torch.Tensor, qn: int, qp: int, n: int) -> torch.Tensor:
    s = grad_scale(s, 1.0 / math.sqrt(n * max(qp, 1)))
    return round_ste(torch.clamp(v / s, -qn, qp)) * s


class LSQWeight(WeightQuantizer):
    method = "lsq"
    min_bits = 2

    def __init__(self, bits: int):
        super().__init__(bits)
        self.step = nn.Parameter(torch.tensor(1.0))

    def constrain(self) -> None:
        """Keep the step positive."""
        with torch.no_grad():
            self.step.clamp_(min=1e-8)

    @property
    def encoding(self) -> Encoding:
        return Encoding.SIGNED

    def _init(self, w: torch.Tensor) -> None:
        if not bool(self.initialized):
            with torch.no_grad():
                qp = 2 ** (self.bits - 1) - 1
                self.step.fill_(max(2 * w.abs().mean().item() / math.sqrt(qp), 1e-8))
                self.initialized.fill_(True)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        self._init(w)
        lo, hi = self.grid
        return _lsq(w, self.step, -lo, hi, w.numel())

    def quantize(self, w: torch.Tensor) -> Quantized:
        self._init(w)
        lo, hi = self.grid
        s = float(self.step.detach())
        codes = torch.clamp(torch.round(w.detach() / s), lo, hi).to(torch.int64)
        return Quantized(codes, s, self.bits, self.encoding)


class LSQAct(ActQuantizer):
    method = "lsq"

    def __init__(self, bits: int, signed: bool = False):
        super().__init__(bits, signed)
        self.step = nn.Parameter(torch.tensor(1.0))

    def constrain(self) -> None:
        """Keep the step positive."""
        with torch.no_grad():
            self.step.clamp_(min=1e-8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.grid
        if self.training and not bool(self.initialized):
            with torch.no_grad():
                self.step.fill_(max(2 * x.abs().mean().item() / math.sqrt(hi), 1e-8))
                self.initialized.fill_(True)
        return _lsq(x, self.step, -lo, hi, x[0].numel())

    def affine(self) -> Affine:
        s = float(self.step.detach())
        return Affine(1.0 / s, 0.0, s, self.bits, self.encoding)
