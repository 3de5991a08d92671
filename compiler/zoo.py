"""Built-in networks as IR graphs with seeded random integer weights.

``resnet20`` (CIFAR-style, 3 stages of 3 basic blocks) and ``resnet18`` (ImageNet-style) at
given bit-widths. Weights are drawn from a rounded normal distribution on each layer's grid;
requant constants are calibrated on a seeded random image so that each layer's output uses its
range the way a trained network's would (the 99.9th percentile of |acc| maps to the top of the
range, plus a BatchNorm-like per-channel offset). These graphs let hardware and compiler work
proceed before training exists; trained networks come from ``bitmill export``.

Conventions: the input is an 8-bit unsigned image; activations after ReLU are unsigned
``a_bits``; the outputs of the last conv of a block and of a downsampling shortcut are signed
``residual_bits`` (default 8); the residual `Add` applies ReLU and outputs unsigned ``a_bits``.
A layer's activation bit-width is the bit-width of its input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bitmill import numerics
from bitmill.errors import IRError
from bitmill.numerics import Encoding
from bitmill.precision import check_runtime_bits, split_bits
from bitmill.resnets import ResNetArch, arch
from bitmill.compiler.ir import (Add, Conv2d, Dense, Flatten, GlobalAvgPool, Graph, Input,
                                 MaxPool, Node, Requant, TensorType)
from bitmill.sim import golden

CALIB_PERCENTILE = 99.9
LOGIT_BITS = 16
MAX_SCALE = 16384.0            # largest requant scale a 16-bit multiplier holds comfortably


@dataclass(frozen=True)
class BitSpec:
    """Bit-widths of a built-in network: uniform ``w_bits``/``a_bits``, optionally 8-bit first
    and last layers, and per-layer ``(w_bits, a_bits)`` by layer name in ``layers`` (``a_bits``:
    the bits of the layer's input; ``avgpool`` names the input of the global average)."""

    w_bits: int
    a_bits: int
    first_last_bits: int | None = None
    residual_bits: int = 8
    w_enc: Encoding = Encoding.SIGNED
    layers: tuple[tuple[str, tuple[int, int]], ...] = ()

    def __post_init__(self) -> None:
        for key in ("w_bits", "a_bits", "residual_bits") + (
                ("first_last_bits",) if self.first_last_bits is not None else ()):
            check_runtime_bits(key, getattr(self, key), IRError)
        object.__setattr__(self, "w_enc", Encoding(self.w_enc))
        layers = tuple((str(k), (int(w), int(a))) for k, (w, a) in dict(self.layers).items())
        for name, (w, a) in layers:
            check_runtime_bits(f"{name} weight bits", w, IRError)
            check_runtime_bits(f"{name} activation bits", a, IRError)
        object.__setattr__(self, "layers", layers)

    def of(self, layer: str, edge: bool = False) -> tuple[int, int]:
        """(w_bits, a_bits) of a layer; ``edge`` marks the first and last layer."""
        named = dict(self.layers)
        if layer in named:
            return named[layer]
        if edge and self.first_last_bits is not None:
            return self.first_last_bits, self.first_last_bits
        return self.w_bits, self.a_bits

    @classmethod
    def parse(cls, text: str, **kw) -> "BitSpec":
        """Parse ``"w4a4"`` (weights 4-bit, activations 4-bit)."""
        return cls(*split_bits(text, error=IRError), **kw)


class _Builder:
    """Appends nodes and keeps a calibration batch flowing through them (golden model)."""

    def __init__(self, image: TensorType, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[Node] = [Input("input", (), image)]
        lo, hi = image.range
        self.values = {"input": self.rng.integers(lo, hi + 1, size=(2,) + image.shape)}
        self.types = {"input": image}

    def _append(self, node: Node) -> str:
        args = [self.values[n] for n in node.inputs]
        self.values[node.name] = golden.eval_node(node, args, [self.types[n] for n in node.inputs])
        self.types[node.name] = node.out
        self.nodes.append(node)
        return node.name

    def _weights(self, shape, bits: int, enc: Encoding) -> np.ndarray:
        lo, hi = numerics.value_range(bits, enc)
        if enc is Encoding.ODD:      # sample the code j, value 2j - (2^b - 1)
            j = np.rint(self.rng.normal((1 << bits) / 2 - 0.5, max(1.0, (1 << bits) / 4), shape))
            return (2 * np.clip(j, 0, (1 << bits) - 1) - hi).astype(np.int64)
        w = np.rint(self.rng.normal(0.0, max(0.6, hi / 2.5), shape))
        return np.clip(w, lo, hi).astype(np.int64)

    def _requant(self, acc: np.ndarray, out: TensorType, relu: bool) -> Requant:
        """Map the calibration percentile of |acc| per channel onto the output range."""
        c = acc.shape[1]
        per_ch = np.moveaxis(np.abs(acc.astype(np.float64)), 1, 0).reshape(c, -1)
        top = np.maximum(np.percentile(per_ch, CALIB_PERCENTILE, axis=1), 1.0)
        scale = np.minimum(out.range[1] / top, MAX_SCALE)
        mult, shift = numerics.quantize_scales(scale)
        offset = self.rng.normal(0.1 if relu else 0.0, 0.1, c) * out.range[1]
        bias = np.rint(offset * (2.0 ** shift)).astype(np.int64)
        return Requant(mult, bias, shift)

    def conv(self, name: str, x: str, out_ch: int, k: int, stride: int, w_bits: int,
             out_bits: int, relu: bool, enc: Encoding) -> str:
        xt = self.types[x]
        weight = self._weights((out_ch, xt.shape[0], k, k), w_bits, enc)
        out_enc = Encoding.UNSIGNED if relu else Encoding.SIGNED
        probe = Conv2d(name, (x,), TensorType((out_ch,), out_bits, out_enc), weight, w_bits, enc,
                       Requant(np.ones(out_ch), np.zeros(out_ch), np.zeros(out_ch)),
                       relu, stride, k // 2)
        shape = probe.infer_shape([xt])
        acc = golden.conv2d_acc(self.values[x], probe, xt)
        out = TensorType(shape, out_bits, out_enc)
        return self._append(Conv2d(name, (x,), out, weight, w_bits, enc,
                                   self._requant(acc, out, relu), relu, stride, k // 2))

    def dense(self, name: str, x: str, out_features: int, w_bits: int, enc: Encoding) -> str:
        xt = self.types[x]
        weight = self._weights((out_features, xt.shape[0]), w_bits, enc)
        out = TensorType((out_features,), LOGIT_BITS, Encoding.SIGNED)
        probe = Dense(name, (x,), out, weight, w_bits, enc,
                      Requant(np.ones(out_features), np.zeros(out_features), np.zeros(out_features)))
        acc = golden.conv2d_acc(self.values[x], probe, xt)
        req = self._requant(acc, TensorType(out.shape, 12, Encoding.SIGNED), False)
        return self._append(Dense(name, (x,), out, weight, w_bits, enc, req, False))

    def add(self, name: str, a: str, b: str, out_bits: int) -> str:
        va, vb = (self.values[n].astype(np.float64) for n in (a, b))
        ra = 1.0 / max(np.percentile(np.abs(va), CALIB_PERCENTILE), 1.0)
        rb = 1.0 / max(np.percentile(np.abs(vb), CALIB_PERCENTILE), 1.0)
        out = TensorType(self.types[a].shape, out_bits, Encoding.UNSIGNED)
        top = max(np.percentile(np.maximum(va * ra + vb * rb, 0), CALIB_PERCENTILE), 1e-3)
        sa, sb = (min(out.range[1] * r / top, MAX_SCALE) for r in (ra, rb))
        ma, mb, shift = numerics.add_multipliers(sa, sb)
        return self._append(Add(name, (a, b), out, ma, mb, 0, shift, True))

    def maxpool(self, name: str, x: str, k: int, stride: int, pad: int) -> str:
        xt = self.types[x]
        probe = MaxPool(name, (x,), xt, k, stride, pad)
        out = TensorType(probe.infer_shape([xt]), xt.bits, xt.encoding)
        return self._append(MaxPool(name, (x,), out, k, stride, pad))

    def avgpool_flatten(self, x: str, out_bits: int) -> str:
        xt = self.types[x]
        s = self.values[x].astype(np.int64).sum(axis=(2, 3), keepdims=True)
        out = TensorType((xt.shape[0], 1, 1), out_bits, Encoding.UNSIGNED)
        pool = self._append(GlobalAvgPool("avgpool", (x,), out, self._requant(s, out, True)))
        flat = TensorType((xt.shape[0],), out_bits, Encoding.UNSIGNED)
        return self._append(Flatten("flatten", (pool,), flat))

    def graph(self, name: str, output: str) -> Graph:
        return Graph(tuple(self.nodes), output, name).verify()


def _basic_block(b: _Builder, blk, x: str, bits: BitSpec, out_consumer: str) -> str:
    name = blk.name
    h = b.conv(f"{name}.conv1", x, blk.channels, 3, blk.stride, bits.of(f"{name}.conv1")[0],
               bits.of(f"{name}.conv2")[1], True, bits.w_enc)
    h = b.conv(f"{name}.conv2", h, blk.channels, 3, 1, bits.of(f"{name}.conv2")[0],
               bits.residual_bits, False, bits.w_enc)
    short = x
    if blk.downsample:
        if bits.of(f"{name}.downsample")[1] != bits.of(f"{name}.conv1")[1]:
            raise IRError(f"{name}.downsample and {name}.conv1 read the same tensor and need the "
                          f"same activation bits")
        short = b.conv(f"{name}.downsample", x, blk.channels, 1, blk.stride,
                       bits.of(f"{name}.downsample")[0], bits.residual_bits, False, bits.w_enc)
    return b.add(f"{name}.add", h, short, bits.of(out_consumer)[1])


def resnet(a: ResNetArch, bits: BitSpec, image: tuple[int, ...], num_classes: int, seed: int) -> Graph:
    """The integer graph of architecture ``a`` with seeded weights at ``bits``."""
    b = _Builder(TensorType(image, 8, Encoding.UNSIGNED, 1 / 255), seed)
    blocks = list(a.blocks())
    consumers = [f"{blk.name}.conv1" for blk in blocks[1:]] + ["avgpool"]
    x = b.conv("conv1", "input", a.stem_channels, a.stem_kernel, a.stem_stride,
               bits.of("conv1", edge=True)[0], bits.of(f"{blocks[0].name}.conv1")[1], True, bits.w_enc)
    if a.stem_maxpool:
        x = b.maxpool("maxpool", x, 3, 2, 1)
    for blk, consumer in zip(blocks, consumers):
        x = _basic_block(b, blk, x, bits, consumer)
    fc_w, fc_a = bits.of("fc", edge=True)
    x = b.avgpool_flatten(x, fc_a)
    return b.graph(a.name, b.dense("fc", x, num_classes, fc_w, bits.w_enc))


def resnet18(bits: BitSpec, seed: int = 0, image: tuple[int, int, int] = (3, 224, 224),
             num_classes: int = 1000) -> Graph:
    """ImageNet-style ResNet-18: 7x7/2 stem, max-pool, 4 stages of 2 blocks (64..512)."""
    return resnet(arch("resnet18"), bits, image, num_classes, seed)


def resnet20(bits: BitSpec, seed: int = 0, image: tuple[int, int, int] = (1, 28, 28),
             num_classes: int = 10, width: int = 16) -> Graph:
    """CIFAR-style ResNet-20: 3x3 stem, 3 stages of 3 blocks (width, 2*width, 4*width)."""
    return resnet(arch("resnet20", width), bits, image, num_classes, seed)


def resnet8(bits: BitSpec, seed: int = 0, image: tuple[int, int, int] = (1, 28, 28),
            num_classes: int = 10, width: int = 16) -> Graph:
    """ResNet-8 for fast tests: 3 stages of 1 block."""
    return resnet(arch("resnet8", width), bits, image, num_classes, seed)


MODELS = {"resnet8": resnet8, "resnet20": resnet20, "resnet18": resnet18}


def build(model: str, bits: BitSpec | str, seed: int = 0) -> Graph:
    """A built-in network by name (``resnet8``, ``resnet20``, ``resnet18``)."""
    if model not in MODELS:
        raise IRError(f"unknown model {model!r}; built-in models: {', '.join(MODELS)}")
    if isinstance(bits, str):
        bits = BitSpec.parse(bits)
    return MODELS[model](bits, seed=seed)
