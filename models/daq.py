"""DAQ (Kim, Lee, Ham, ICCV 2021): distance-aware soft rounding with a temperature controller.

With ``M = 2^b-1`` and ``x_hat`` the input mapped to ``[0, M]``: ``q_f = floor(x_hat)``,
``t = x_hat - q_f``, ``m_i = exp(-|t-i|)``, ``near = argmax m_i``,
``k_i = exp(-(i-near)^2/sigma^2)``, ``s_i = m_i*k_i``, ``beta = gamma/|s_0-s_1|`` (no
gradient), ``p_1 = sigmoid(beta*(s_1-s_0))``, ``c = 1/(exp(gamma)-1)``,
``y = -c(1-p_1) + (1+c)p_1``, ``x_q = q_f + y``. Mathematically ``y`` is exactly 0 or 1; the
forward pass uses the hard value and the backward pass the gradient of ``y`` (so forward equals
hard rounding bit for bit). Weights: standardised per layer, clipped to learnable
``[l, u]``, value ``(2x_q - M)/M`` (odd grid); activations clipped to ``[0, u]``, value
``x_q*u/M`` (the paper's ``x_q/M`` times the detached range: a quantized tensor here also feeds
the identity shortcut of a residual block, so it keeps the scale of the tensor it replaces;
the gradient w.r.t. ``u`` keeps the paper's direction). Quantizer parameters train with Adam
at 1e-4. The layer output scale ``|beta_out|`` lives in the quantized conv layer.

Initialisation (bitmill's choice, ``init="mse"``): the paper starts every layer at
``[l, u] = [-3, 3]`` and ``u_A = 3*std`` of the first batch and trains for hundreds of epochs;
when fine-tuning for a few epochs from a full-precision network, ranges that minimise the
rounding error of the first batch (and of the weights) at the layer's bit-width start much
closer to a good solution (3*std clips about 4% of post-ReLU activations, which Adam at 1e-4
cannot undo in a short run). ``init="paper"`` restores the paper's values.
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


def _check_init(init: str) -> str:
    if init not in ("mse", "paper"):
        raise ValueError(f"DAQ init must be 'mse' or 'paper', not {init!r}")
    return init


class _SoftRound(torch.autograd.Function):
    """Fused `soft_round`: the forward saves only ``t``; the backward evaluates ``dy/dt`` in
    closed form. With ``beta`` detached, ``p_1 = sigmoid(+-gamma)`` is constant, so
    ``dy/dt = (1+2c) * sigmoid(gamma) * sigmoid(-gamma) * gamma * (s_0+s_1) / |s_0-s_1|``
    (``ds_0/dt = -s_0``, ``ds_1/dt = s_1``; at ``t = 0`` the derivative of ``|t|`` is taken as
    +1, as in the authors' code)."""

    @staticmethod
    def forward(ctx, x_hat: torch.Tensor, sigma: float, gamma: float) -> torch.Tensor:
        q_f = torch.floor(x_hat)
        t = x_hat - q_f
        ctx.save_for_backward(t)
        ctx.sigma, ctx.gamma = sigma, gamma
        return q_f + (t > 0.5).to(x_hat.dtype)   # m_1 > m_0 exactly when t > 1/2

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (t,) = ctx.saved_tensors
        # (s_0+s_1)/|s_0-s_1| = (1+r)/(1-r) with r = s_far/s_near = exp(-1/sigma^2 - |2t-1|) < 1
        r = (2 * t - 1).abs_().neg_().sub_(1.0 / ctx.sigma ** 2).exp_()
        g = ctx.gamma
        c = 1.0 / (math.exp(g) - 1.0)
        k = (1 + 2 * c) * g / (2 + math.exp(g) + math.exp(-g))   # sigmoid(g)*sigmoid(-g) = 1/(2+e^g+e^-g)
        return grad * k * (1 + r) / (1 - r), None, None


def mse_range(x: torch.Tensor, bits: int, symmetric: bool, samples: int = 1 << 16) -> float:
    """Clipping value ``c`` (range ``[-c, c]`` or ``[0, c]``) of the uniform ``2^bits``-level
    grid that minimises the mean squared rounding error of ``x`` (40 candidates up to max|x|,
    on an evenly strided sample of at most ``samples`` values)."""
    v = x.detach().flatten()
    v = v[:: max(1, v.numel() // samples)].to(torch.float64)
    top = float(v.abs().max())
    if top == 0.0:
        return 1.0
    m = 2 ** bits - 1
    c = top * torch.linspace(1 / 40, 1, 40, dtype=torch.float64)[:, None]
    lo = -c if symmetric else torch.zeros_like(c)
    step = (c - lo) / m
    q = torch.clamp(torch.round((v - lo) / step), 0, m) * step + lo
    return float(c[int(((q - v) ** 2).mean(dim=1).argmin())])


def soft_round(x_hat: torch.Tensor, sigma: float, gamma: float = GAMMA) -> torch.Tensor:
    """Hard rounding (ties down) in the forward pass, DAQ's surrogate gradient backward."""
    return _SoftRound.apply(x_hat, sigma, gamma)


class DAQWeight(WeightQuantizer):
    method = "daq"
    revision = 2        # 2: MSE-optimal ranges, activations at their real scale, fused gradient

    def __init__(self, bits: int, sigma: float = SIGMA_W, gamma: float = GAMMA, init: str = "mse"):
        super().__init__(bits)
        self.lower = nn.Parameter(torch.tensor(-3.0))
        self.upper = nn.Parameter(torch.tensor(3.0))
        self.sigma, self.gamma, self.init = sigma, gamma, _check_init(init)

    @property
    def encoding(self) -> Encoding:
        return Encoding.ODD

    def _x_hat(self, w: torch.Tensor) -> torch.Tensor:
        m = 2 ** self.bits - 1
        ws = (w - w.mean()) / (w.std() + 1e-8)
        if not bool(self.initialized):
            with torch.no_grad():
                c = mse_range(ws, self.bits, symmetric=True) if self.init == "mse" else 3.0
                self.lower.fill_(-c)
                self.upper.fill_(c)
                self.initialized.fill_(True)
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
    revision = 2

    def __init__(self, bits: int, signed: bool = False, sigma: float = SIGMA_A, gamma: float = GAMMA,
                 init: str = "mse"):
        if signed:
            raise ValueError("DAQ activations are unsigned (they follow a ReLU)")
        super().__init__(bits, signed)
        self.upper = nn.Parameter(torch.tensor(3.0))
        self.sigma, self.gamma, self.init = sigma, gamma, _check_init(init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = 2 ** self.bits - 1
        if self.training and not bool(self.initialized):
            with torch.no_grad():
                c = mse_range(x, self.bits, symmetric=False) if self.init == "mse" else 3 * float(x.std())
                self.upper.fill_(max(c, 1e-3))
                self.initialized.fill_(True)
        x_hat = torch.clamp(x / (self.upper / m), 0, m)
        return soft_round(x_hat, self.sigma, self.gamma) * (self.upper.detach() / m)

    def affine(self) -> Affine:
        m = 2 ** self.bits - 1
        u = float(self.upper.detach())
        return Affine(m / u, 0.0, u / m, self.bits, self.encoding)

    def constrain(self) -> None:
        with torch.no_grad():
            self.upper.clamp_(min=1e-3)

    optimizer = "adam"
