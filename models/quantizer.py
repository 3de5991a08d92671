"""Quantizer interface shared by every method, and the straight-through helpers.

A weight quantizer maps a float weight tensor to ``codes * scale`` with integer ``codes`` on
the grid of its ``(bits, encoding)``. An activation quantizer is, in inference, the affine map
``code = clamp(round(gain * x + offset), lo, hi)`` with real value ``code * scale`` for the
consumer; `ActQuantizer.affine` returns those three numbers so export can fold them into the
producing layer's integer requantization.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from bitmill import numerics
from bitmill.precision import MAX_RUNTIME_BITS
from bitmill.errors import BitmillError
from bitmill.numerics import Encoding


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to nearest with an identity gradient (straight-through estimator)."""
    return (x.round() - x).detach() + x


def grad_scale(x: torch.Tensor, g: float) -> torch.Tensor:
    """``x`` in the forward pass, gradient multiplied by ``g`` in the backward pass."""
    return (x - x * g).detach() + x * g


@dataclass(frozen=True)
class Quantized:
    """Integer codes and the real value of one code step."""

    codes: torch.Tensor
    scale: float
    bits: int
    encoding: Encoding


@dataclass(frozen=True)
class Affine:
    """``code = clamp(round(gain*x + offset), lo, hi)``; the consumer sees ``code*scale``."""

    gain: float
    offset: float
    scale: float
    bits: int
    encoding: Encoding


class _Quantizer(nn.Module):
    method: ClassVar[str] = "?"
    min_bits: ClassVar[int] = 1
    revision: ClassVar[int] = 1     # raised whenever the method's training behaviour changes

    def __init__(self, bits: int):
        super().__init__()
        if isinstance(bits, bool) or not isinstance(bits, int) or not self.min_bits <= bits <= MAX_RUNTIME_BITS:
            raise BitmillError(f"{self.method} {self.kind} bits must be an integer in "
                               f"{self.min_bits}..{MAX_RUNTIME_BITS}, not {bits!r}")
        self.bits = bits
        self.register_buffer("initialized", torch.tensor(False))

    kind: ClassVar[str] = "quantizer"

    @property
    def encoding(self) -> Encoding:
        raise NotImplementedError

    @property
    def grid(self) -> tuple[int, int]:
        return numerics.value_range(self.bits, self.encoding)

    def regularizer(self) -> torch.Tensor | float:
        """Extra loss term of the method (0 when it has none)."""
        return 0.0

    def constrain(self) -> None:
        """Project parameters back into their valid region (after an optimizer step)."""

    def extra_repr(self) -> str:
        return f"bits={self.bits}, encoding={self.encoding.label}"


class WeightQuantizer(_Quantizer):
    """Base of weight quantizers: ``forward`` fake-quantizes, ``quantize`` gives codes."""

    kind = "weight"

    def quantize(self, w: torch.Tensor) -> Quantized:
        raise NotImplementedError


class ActQuantizer(_Quantizer):
    """Base of activation quantizers (unsigned after ReLU, or signed for residual streams)."""

    kind = "activation"

    def __init__(self, bits: int, signed: bool = False):
        super().__init__(bits)
        self.signed = signed

    @property
    def encoding(self) -> Encoding:
        return Encoding.SIGNED if self.signed else Encoding.UNSIGNED

    def affine(self) -> Affine:
        raise NotImplementedError

    def quantize(self, x: torch.Tensor) -> Quantized:
        """Integer codes of ``x`` in inference (the affine rule, round half to even)."""
        a = self.affine()
        lo, hi = self.grid
        codes = torch.clamp(torch.round(x * a.gain + a.offset), lo, hi).to(torch.int64)
        return Quantized(codes, a.scale, self.bits, self.encoding)
