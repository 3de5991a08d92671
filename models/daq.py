"""DAQ (Kim, Lee, Ham, ICCV 2021): distance-aware soft rounding with a temperature controller.

With ``M = 2^b-1`` and ``x_hat`` the input mapped to ``[0, M]``: ``q_f = floor(x_hat)``,
``t = x_hat - q_f``, ``m_i = exp(-|t-i|)``, ``near = argmax m_i``,
``k_i = exp(-(i-near)^2/sigma^2)``, ``s_i = m_i*k_i``, ``beta = gamma/|s_0-s_1|`` (no
gradient), ``p_1 = sigmoid(beta*(s_1-s_0))``, ``c = 1/(exp(gamma)-1)``,
``y = -c(1-p_1) + (1+c)p_1``, ``x_q = q_f + y``. Mathematically ``y`` is exactly 0 or 1; the
forward pass uses the hard value and the backward pass the gradient of ``y`` (so forward equals
hard rounding bit for bit). Weights: standardised per layer, clipped to learnable
``[l, u]`` (init -3, 3), value ``(2x_q - M)/M`` (odd grid); activations clipped to
``[0, u]`` (init 3*std of the first batch), value ``x_q/M``. Quantizer parameters train with
Adam at 1e-4. The layer output scale ``|beta_out|`` lives in the quantized conv layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bitmill.numerics import Encoding
from bitmill.models.quantizer import ActQuantizer, Affine, Quantized, WeightQuantizer

GAMMA = 2.0
SIGMA_W, SIGMA_A = 1.0, 2.0
ADAM_LR = 1e-4


def soft_round(x_hat: torch.Tensor, sigma: float, gamma: float = GAMMA) -> torch.Tensor:
    """Hard rounding (ties down) in the forward pass, DAQ's surrogate gradient backward."""
    q_f = torch.floor(x_hat).detach()
    t = x_hat - q_f
    m0, m1 = torch.exp(-t.abs()), torch.exp(-(t - 1).abs())
    near = (m1 > m0).to(x_hat.dtype).detach()
    k0, k1 = torch.exp(-near ** 2 / sigma ** 2), torch.exp(-(1 - near) ** 2 / sigma ** 2)
    s0, s1 = m0 * k0, m1 * k1
    beta = (gamma / torch.clamp((s0 - s1).abs(), min=1e-12)).detach()
    p1 = torch.sigmoid(beta * (s1 - s0))
    c = 1.0 / (math.exp(gamma) - 1.0)
    y = -c * (1 - p1) + (1 + c) * p1
    return q_f + near + (y - y.detach())


class DAQWeight(WeightQuantizer):
    method = "daq"

    def __init__(self, bits: int, sigma: float = SIGMA_W, gamma: float = GAMMA):
        super().__init__(bits)
        self.lower = nn.Parameter(torch.tensor(-3.0))
        self.upper = nn.Parameter(torch.tensor(3.0))
        self.sigma, self.gamma = sigma, gamma

    @property
    def encoding(self) -> Encoding:
        return Encoding.ODD

    def _x_hat(self, w: torch.Tensor) -> torch.Tensor:
        m = 2 ** self.bits - 1
        ws = (w - w.mean()) / (w.std() + 1e-8)
        return torch.clamp((ws - self.lower) / ((self.upper - self.lower) / m), 0, m)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        m = 2 ** self.bits - 1
        return (2 * soft_round(self._x_hat(w), self.sigma, self.gamma) - m) / m

    def quantize(self, w: torch.Tensor) -> Quantized:
        m = 2 ** self.bits - 1
        with torch.no_grad():
            xq = soft_round(self._x_hat(w), self.sigma, self.gamma)
        return Quantized((2 * xq - m).to(torch.int64), 1.0 / m, self.bits, self.encoding)

    def constrain(self) -> None:
        with torch.no_grad():
            self.upper.copy_(torch.maximum(self.upper, self.lower + 1e-3))

    optimizer = "adam"


class DAQAct(ActQuantizer):
    method = "daq"

    def __init__(self, bits: int, signed: bool = False, sigma: float = SIGMA_A, gamma: float = GAMMA):
        if signed:
            raise ValueError("DAQ activations are unsigned (they follow a ReLU)")
        super().__init__(bits, signed)
        self.upper = nn.Parameter(torch.tensor(3.0))
        self.sigma, self.gamma = sigma, gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = 2 ** self.bits - 1
        if self.training and not bool(self.initialized):
            with torch.no_grad():
                self.upper.fill_(max(3 * float(x.std()), 1e-3))
                self.initialized.fill_(True)
        x_hat = torch.clamp(x / (self.upper / m), 0, m)
        return soft_round(x_hat, self.sigma, self.gamma) / m

    def affine(self) -> Affine:
        m = 2 ** self.bits - 1
        return Affine(m / float(self.upper.detach()), 0.0, 1.0 / m, self.bits, self.encoding)

    def constrain(self) -> None:
        with torch.no_grad():
            self.upper.clamp_(min=1e-3)

    optimizer = "adam"
