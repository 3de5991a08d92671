"""PACT (Choi et al., 2018): learned clipping level ``alpha`` for activations.

``y = clip(x, 0, alpha)``, ``y_q = round(y*(2^k-1)/alpha) * alpha/(2^k-1)``;
``dy_q/dalpha = 1[x >= alpha]``, ``dy_q/dx = 1[0 <= x < alpha]``; loss ``+ lambda*alpha^2``.
``lambda`` defaults to 1e-4. ``alpha`` starts at the 99.9th percentile of the first training
batch (bitmill's choice for fine-tuning from a full-precision network: the constant 10 that
from-scratch reimplementations use lies far above BatchNorm-normalised activations, where its
gradient ``1[x >= alpha]`` is zero); pass ``alpha=10.0`` for the reimplementations' start.
"""

from __future__ import annotations

import torch
from torch import nn

from bitmill.models.quantizer import ActQuantizer, Affine

DEFAULT_LAMBDA = 1e-4


class PACTAct(ActQuantizer):
    method = "pact"

    def __init__(self, bits: int, signed: bool = False, alpha: float | None = None,
                 reg: float = DEFAULT_LAMBDA):
        if signed:
            raise ValueError("PACT quantizes ReLU outputs; it has no signed form")
        super().__init__(bits, signed)
        self.alpha = nn.Parameter(torch.tensor(10.0 if alpha is None else float(alpha)))
        self.reg = reg
        if alpha is not None:
            self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = 2 ** self.bits - 1
        if self.training and not bool(self.initialized):
            with torch.no_grad():
                top = torch.quantile(x.detach().flatten()[:100000].float(), 0.999)
                self.alpha.fill_(max(float(top), 1e-3))
                self.initialized.fill_(True)
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
