"""Quantizable ResNets: ResNet-8 / ResNet-20 (CIFAR-style, width configurable) and ResNet-18
(ImageNet-style stem, input size configurable).

The float network has exactly the structure of the integer graph it exports to: the 8-bit image
(value/255) feeds ``conv1``; every ReLU output is quantized by an activation quantizer; the
last conv of a block and a downsampling shortcut are quantized to signed 8 bits; the block output
``relu(residual + shortcut)`` is quantized; the global average is quantized before ``fc``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bitmill import resnets
from bitmill.errors import BitmillError
from bitmill.resnets import Block, ResNetArch
from bitmill.models.bits import BitAssignment
from bitmill.models.layers import QConv2d, QLinear, apply, residual_quantizer
from bitmill.models.methods import Method


def arch(name: str, width: int = 16) -> ResNetArch:
    """The named architecture; for ``resnet18`` the default width 16 of the training
    configuration stands for the standard 64 channels."""
    return resnets.arch(name, None if name == "resnet18" and width == 16 else width)


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
    def __init__(self, spec: Block, mk: _Maker, out_consumer: str):
        super().__init__()
        name, cin, cout, stride = spec.name, spec.in_channels, spec.channels, spec.stride
        self.name = name
        self.conv1 = mk.conv(f"{name}.conv1", cin, cout, 3, stride)
        self.act1 = mk.act(f"{name}.conv2")
        self.conv2 = mk.conv(f"{name}.conv2", cout, cout, 3, 1)
        self.res = residual_quantizer(not mk.method.is_fp)
        self.downsample = None
        if spec.downsample:
            self.downsample = mk.conv(f"{name}.downsample", cin, cout, 1, stride)
            self.res_down = residual_quantizer(not mk.method.is_fp)
            if mk.bits.of(f"{name}.downsample")[1] != mk.bits.of(f"{name}.conv1")[1]:
                raise BitmillError(f"{name}.downsample and {name}.conv1 read the same tensor and "
                                   f"need the same activation bits")
        self.act_out = mk.act(out_consumer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = apply(self.act1, F.relu(self.conv1(x)))
        r = apply(self.res, self.conv2(h))
        sc = x if self.downsample is None else apply(self.res_down, self.downsample(x))
        return apply(self.act_out, F.relu(r + sc))


class QResNet(nn.Module):
    """A ResNet of basic blocks, quantized with ``method`` at ``bits`` (``fp``: no quantizers)."""

    def __init__(self, arch: ResNetArch, method: Method, bits: BitAssignment, in_channels: int = 1,
                 num_classes: int = 10):
        super().__init__()
        self.arch, self.method, self.bits = arch, method, bits
        mk = _Maker(method, bits)
        self.maxpool = arch.stem_maxpool
        self.conv1 = mk.conv("conv1", in_channels, arch.stem_channels, arch.stem_kernel,
                             arch.stem_stride, edge=True)
        specs = list(arch.blocks())
        self.act_stem = mk.act(f"{specs[0].name}.conv1")
        consumers = [f"{s.name}.conv1" for s in specs[1:]] + ["avgpool"]
        self.blocks = nn.ModuleList(BasicBlock(s, mk, consumer) for s, consumer in zip(specs, consumers))
        self.act_pool = mk.act("fc", edge=True)
        wq = None if method.is_fp else method.weight_quantizer(bits.of("fc", edge=True)[0])
        self.fc = QLinear(arch.features, num_classes, wq, out_gain=method.weight == "daq")

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
