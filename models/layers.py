"""Quantized layers: convolution with BatchNorm, fully connected, residual quantizer.

A layer holds float (latent) weights and, when quantized, a `WeightQuantizer`; activation
quantizers are separate modules placed where the network's tensors are quantized, so every
integer tensor of the exported graph has exactly one quantizer in the float network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bitmill.models.lsq import LSQAct
from bitmill.models.quantizer import WeightQuantizer

RESIDUAL_BITS = 8


def _init_gain(layer: nn.Module, ref: torch.Tensor, y: torch.Tensor) -> None:
    """DAQ's output-scale initialisation: ``mean|float output| / mean|quantized output|``."""
    layer.out_gain.fill_(float(ref.abs().mean() / y.abs().mean().clamp(min=1e-12)))
    layer.gain_initialized.fill_(True)


class QConv2d(nn.Module):
    """Conv (no bias) + BatchNorm; weights fake-quantized by ``wq`` when given. ``out_gain``
    adds DAQ's learnable output scale ``|beta_out|`` (set on the first training batch)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1,
                 wq: WeightQuantizer | None = None, out_gain: bool = False):
        super().__init__()
        for name, v in (("cin", cin), ("cout", cout), ("kernel", kernel), ("stride", stride)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        self.stride, self.padding = stride, kernel // 2
        self.weight = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bn = nn.BatchNorm2d(cout)
        self.wq = wq
        self.out_gain = nn.Parameter(torch.tensor(1.0)) if out_gain else None
        self.register_buffer("gain_initialized", torch.tensor(not out_gain))

    def quantized_weight(self) -> torch.Tensor:
        return self.weight if self.wq is None else self.wq(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.quantized_weight(), None, self.stride, self.padding)
        if self.out_gain is not None:
            if self.training and not bool(self.gain_initialized):
                with torch.no_grad():
                    _init_gain(self, F.conv2d(x, self.weight, None, self.stride, self.padding), y)
            y = y * self.out_gain.abs()
        return self.bn(y)


class QLinear(nn.Module):
    """Fully connected layer with bias; weights fake-quantized by ``wq`` when given;
    ``out_gain`` as in `QConv2d` (DAQ's weights lie in [-1, 1], so the logits need it)."""

    def __init__(self, fin: int, fout: int, wq: WeightQuantizer | None = None, out_gain: bool = False):
        super().__init__()
        self.linear = nn.Linear(fin, fout)
        self.wq = wq
        self.out_gain = nn.Parameter(torch.tensor(1.0)) if out_gain else None
        self.register_buffer("gain_initialized", torch.tensor(not out_gain))

    @property
    def weight(self) -> nn.Parameter:
        return self.linear.weight

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before the output gain existed have no flag; without a gain it is set
        if self.out_gain is None:
            state_dict.setdefault(prefix + "gain_initialized", torch.tensor(True))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.wq is None:
            return self.linear(x)
        y = F.linear(x, self.wq(self.linear.weight))
        if self.out_gain is not None:
            if self.training and not bool(self.gain_initialized):
                with torch.no_grad():
                    _init_gain(self, F.linear(x, self.linear.weight), y)
            y = y * self.out_gain.abs()
        return y + self.linear.bias


def residual_quantizer(quantized: bool) -> nn.Module | None:
    """Signed 8-bit LSQ quantizer of a residual branch (every method: the papers add residuals
    in float, integer-only inference must quantize them)."""
    return LSQAct(RESIDUAL_BITS, signed=True) if quantized else None


def apply(q: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    """``q(x)``, or ``x`` when the tensor is not quantized (full precision)."""
    return x if q is None else q(x)
