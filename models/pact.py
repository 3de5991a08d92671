"""PACT (Choi et al., 2018): learned clipping level ``alpha`` for activations.

``y = clip(x, 0, alpha)``, ``y_q = round(y*(2^k-1)/alpha) * alpha/(2^k-1)``;
``dy_q/dalpha = 1[x >= alpha]``, ``dy_q/dx = 1[0 <= x < alpha]``; loss ``+ lambda*alpha^2``.
``alpha`` starts at 10 (as reimplementations do); ``lambda`` defaults to 1e-4.
"""

from __future__ import annotations

import torch
from torch import nn

from bitmill.models.quantizer import ActQuantizer, Affine

DEFAULT_ALPHA = 10.0
DEFAULT_LAMBDA = 1e-4


class PACTAct(ActQuantizer):
    method = "pact"

    def __init__(self, bits: int, signed: bool = False, alpha: float = DEFAULT_ALPHA,
                 reg: float = DEFAULT_LAMBDA):
        if signed:
            raise ValueError("PACT quantizes ReLU outputs; it has no signed form")
        super().__init__(bits, signed)
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))
        self.reg = reg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = 2 ** self.bits - 1
        y = torch.where(x >= self.alpha, self.alpha, torch.relu(x))
        yq = torch.round(y.detach() * levels / self.alpha.detach()) * self.alpha.detach() / levels
        return y + (yq - y).detach()

    def regularizer(self) -> torch.Tensor:
        return self.reg * self.alpha ** 2

    def constrain(self) -> None:
        with torch.no_grad():
            self.alpha.clamp_(min=1e-3)

    def affine(self) -> Affine:
        levels = 2 ** self.bits - 1
        a = float(self.alpha.detach())
        return Affine(levels / a, 0.0, a / levels, self.bits, self.encoding)
