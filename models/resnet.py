"""Quantizable ResNets: ResNet-8 / ResNet-20 (CIFAR-style, width configurable) and ResNet-18
(ImageNet-style stem, input size configurable).

The float network has exactly the structure of the integer graph it exports to: the 8-bit image
(value/255) feeds ``conv1``; every ReLU output is quantized by an activation quantizer; the
last conv of a block and a downsampling shortcut are quantized to signed 8 bits; the block output
``relu(residual + shortcut)`` is quantized; the global average is quantized before ``fc``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bitmill.errors import BitmillError
from bitmill.models.bits import BitAssignment
from bitmill.models.layers import QConv2d, QLinear, apply, residual_quantizer
from bitmill.models.methods import Method


@dataclass(frozen=True)
class Arch:
    """Stages as (channels, blocks, first stride); stem (kernel, stride, maxpool)."""

    name: str
    stages: tuple[tuple[int, int, int], ...]
    stem: tuple[int, int, bool]


def arch(name: str, width: int = 16) -> Arch:
    """The named architecture (``resnet8``, ``resnet20``, ``resnet18``)."""
    if name == "resnet20":
        return Arch(name, ((width, 3, 1), (2 * width, 3, 2), (4 * width, 3, 2)), (3, 1, False))
    if name == "resnet8":
        return Arch(name, ((width, 1, 1), (2 * width, 1, 2), (4 * width, 1, 2)), (3, 1, False))
    if name == "resnet18":
        w = width if width != 16 else 64
        return Arch(name, ((w, 2, 1), (2 * w, 2, 2), (4 * w, 2, 2), (8 * w, 2, 2)), (7, 2, True))
    raise BitmillError(f"unknown model {name!r}; choose resnet8, resnet20 or resnet18")


class _Maker:
    """Creates layers and quantizers with the run's method and per-layer bits."""

    def __init__(self, method: Method, bits: BitAssignment):
        self.method, self.bits = method, bits

    def conv(self, name: str, cin: int, cout: int, k: int, stride: int, edge: bool = False) -> QConv2d:
        wq = None if self.method.is_fp else self.method.weight_quantizer(self.bits.of(name, edge)[0])
        return QConv2d(cin, cout, k, stride, wq, out_gain=self.method.weight == "daq")

    def act(self, consumer: str, edge: bool = False) -> nn.Module | None:
        """The quantizer of the tensor that layer ``consumer`` reads."""
        return None if self.method.is_fp else self.method.act_quantizer(self.bits.of(consumer, edge)[1])


class BasicBlock(nn.Module):
    def __init__(self, name: str, cin: int, cout: int, stride: int, mk: _Maker, out_consumer: str,
                 out_edge: bool):
        super().__init__()
        self.name = name
        self.conv1 = mk.conv(f"{name}.conv1", cin, cout, 3, stride)
        self.act1 = mk.act(f"{name}.conv2")
        self.conv2 = mk.conv(f"{name}.conv2", cout, cout, 3, 1)
        self.res = residual_quantizer(not mk.method.is_fp)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = mk.conv(f"{name}.downsample", cin, cout, 1, stride)
            self.res_down = residual_quantizer(not mk.method.is_fp)
            if mk.bits.of(f"{name}.downsample")[1] != mk.bits.of(f"{name}.conv1")[1]:
                raise BitmillError(f"{name}.downsample and {name}.conv1 read the same tensor and "
                                   f"need the same activation bits")
        self.act_out = mk.act(out_consumer, out_edge)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = apply(self.act1, F.relu(self.conv1(x)))
        r = apply(self.res, self.conv2(h))
        sc = x if self.downsample is None else apply(self.res_down, self.downsample(x))
        return apply(self.act_out, F.relu(r + sc))


class QResNet(nn.Module):
    """A ResNet of basic blocks, quantized with ``method`` at ``bits`` (``fp``: no quantizers)."""

    def __init__(self, arch: Arch, method: Method, bits: BitAssignment, in_channels: int = 1,
                 num_classes: int = 10):
        super().__init__()
        self.arch, self.method, self.bits = arch, method, bits
        mk = _Maker(method, bits)
        names = [f"layer{si}.{bi}" for si, (_, n, _) in enumerate(arch.stages, 1) for bi in range(n)]
        k, stride, self.maxpool = arch.stem
        c0 = arch.stages[0][0]
        self.conv1 = mk.conv("conv1", in_channels, c0, k, stride, edge=True)
        self.act_stem = mk.act(f"{names[0]}.conv1")
        blocks, cin, i = [], c0, 0
        for ch, n, first_stride in arch.stages:
            for b in range(n):
                last = i == len(names) - 1
                consumer = "avgpool" if last else f"{names[i + 1]}.conv1"
                blocks.append(BasicBlock(names[i], cin, ch, first_stride if b == 0 else 1, mk,
                                         consumer, False))
                cin, i = ch, i + 1
        self.blocks = nn.ModuleList(blocks)
        self.act_pool = mk.act("fc", edge=True)
        wq = None if method.is_fp else method.weight_quantizer(bits.of("fc", edge=True)[0])
        self.fc = QLinear(cin, num_classes, wq, out_gain=method.weight == "daq")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of images ``x`` with values in [0, 1] (the 8-bit image divided by 255)."""
        h = apply(self.act_stem, F.relu(self.conv1(x)))
        if self.maxpool:
            h = F.max_pool2d(h, 3, 2, 1)
        for block in self.blocks:
            h = block(h)
        pooled = apply(self.act_pool, h.mean(dim=(2, 3)))
        return self.fc(pooled)

    def quantizers(self):
        """Every quantizer module (weights and activations)."""
        from bitmill.models.quantizer import _Quantizer
        return [m for m in self.modules() if isinstance(m, _Quantizer)]

    def regularizer(self) -> torch.Tensor | float:
        return sum((q.regularizer() for q in self.quantizers()), 0.0)

    def constrain(self) -> None:
        for q in self.quantizers():
            q.constrain()


def build_model(name: str, method: Method, bits: BitAssignment, width: int = 16,
                in_channels: int = 1, num_classes: int = 10) -> QResNet:
    """A quantizable ResNet by name."""
    return QResNet(arch(name, width), method, bits, in_channels, num_classes)
