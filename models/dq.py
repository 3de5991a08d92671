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

from bitmill.models.lsq import LSQAct, LSQWeight
from bitmill.models.quantizer import grad_scale, round_ste

AUX_WEIGHT = 0.1


class DQWeight(LSQWeight):
    """Step, initialisation, codes and encoding as LSQ's; the gradients differ (see above)."""

    method = "dq"

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        k = self.quantize(w).codes.to(w.dtype)
        lo, hi = self.grid
        v = (w / self.step).detach()
        inside = (v >= lo - 0.5) & (v <= hi + 0.5)
        step = grad_scale(self.step, 1.0 / math.sqrt(w.numel() * hi))
        return k * step + (w - w.detach()) * inside.to(w.dtype)


class DQAct(LSQAct):
    """LSQ's activation step plus the normalised per-channel error loss."""

    method = "dq"

    def __init__(self, bits: int, signed: bool = False, aux_weight: float = AUX_WEIGHT):
        super().__init__(bits, signed)
        self.aux_weight = aux_weight
        self._aux: torch.Tensor | float = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xq = super().forward(x)
        if self.training and x.dim() == 4:
            lo, hi = self.grid
            xd = x.detach()                      # the extra loss trains the step only
            step = grad_scale(self.step, 1.0 / math.sqrt(x[0].numel() * hi))
            err = (xd - round_ste(torch.clamp(xd / step, lo, hi)) * step).pow(2).mean(dim=(0, 2, 3))
            self._aux = self.aux_weight * (err / (xd.var(dim=(0, 2, 3)) + 1e-8)).mean()
        return xq

    def regularizer(self) -> torch.Tensor | float:
        aux, self._aux = self._aux, 0.0
        return aux
