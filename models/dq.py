"""DQ-style quantization: a documented reconstruction of Direct Quantization (Hoang et al.,
IJCAI 2020), not a reproduction (only the paper's abstract could be confirmed).

Weights: integer codes ``k_i`` on uniform levels ``v = s*k`` (signed grid, learnable ``s``) are
updated directly: a residual ``r_i`` accumulates ``-lr*g_i`` and ``k_i`` moves to the
neighbouring level when ``s*k_i + r_i`` crosses a mid-point. Keeping the latent
``w_i = s*k_i + r_i`` as the layer's parameter, that rule is exactly ``k_i = round(w_i/s)``
with the gradient of ``w_q`` passed to ``w_i`` unchanged inside the grid; the level gradient
``dL/dv_k = sum of g_i over codes k`` becomes ``dL/ds = sum_i g_i*k_i`` under the uniform
constraint. Both steps' gradients are scaled by ``1/sqrt(N*Q_P)`` as in LSQ (bitmill's choice:
unscaled, the step of a large layer diverges in a few steps). Activations: one learned step per layer (integer GEMM stays exact) with an extra
loss averaging normalised per-channel errors ``e_c = ||x_c - Q(x_c)||^2 / Var(x_c)``, weight
`AUX_WEIGHT`, so a few high-variance channels do not dominate the step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bitmill.numerics import Encoding
from bitmill.models.quantizer import (ActQuantizer, Affine, Quantized, WeightQuantizer,
                                      grad_scale, round_ste)

AUX_WEIGHT = 0.1


class DQWeight(WeightQuantizer):
    method = "dq"
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

    def _codes(self, w: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            with torch.no_grad():
                qp = 2 ** (self.bits - 1) - 1
                self.step.fill_(max(2 * w.abs().mean().item() / math.sqrt(qp), 1e-8))
                self.initialized.fill_(True)
        lo, hi = self.grid
        return torch.clamp(torch.round(w.detach() / self.step.detach()), lo, hi)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        k = self._codes(w)
        lo, hi = self.grid
        inside = ((w / self.step).detach() >= lo - 0.5) & ((w / self.step).detach() <= hi + 0.5)
        step = grad_scale(self.step, 1.0 / math.sqrt(w.numel() * self.grid[1]))
        return k * step + (w - w.detach()) * inside.to(w.dtype)

    def quantize(self, w: torch.Tensor) -> Quantized:
        return Quantized(self._codes(w).to(torch.int64), float(self.step.detach()), self.bits, self.encoding)


class DQAct(ActQuantizer):
    method = "dq"

    def __init__(self, bits: int, signed: bool = False, aux_weight: float = AUX_WEIGHT):
        super().__init__(bits, signed)
        self.step = nn.Parameter(torch.tensor(1.0))
        self.aux_weight = aux_weight
        self._aux: torch.Tensor | float = 0.0

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
        step = grad_scale(self.step, 1.0 / math.sqrt(x[0].numel() * hi))
        xq = round_ste(torch.clamp(x / step, lo, hi)) * step
        if self.training and x.dim() == 4:
            xd = x.detach()                      # the extra loss trains the step only
            err = (xd - round_ste(torch.clamp(xd / self.step, lo, hi)) * self.step).pow(2).mean(dim=(0, 2, 3))
            var = xd.var(dim=(0, 2, 3)) + 1e-8
            self._aux = self.aux_weight * (err / var).mean()
        return xq

    def regularizer(self) -> torch.Tensor | float:
        aux, self._aux = self._aux, 0.0
        return aux

    def affine(self) -> Affine:
        s = float(self.step.detach())
        return Affine(1.0 / s, 0.0, s, self.bits, self.encoding)
