"""The ResNet architectures, described once for the built-in integer graphs
(`bitmill.compiler.zoo`) and the quantizable torch models (`bitmill.models.resnet`).

A ResNet of basic blocks: a stem convolution (optionally followed by a 3x3/2 max-pool), stages
of blocks (two 3x3 convolutions; a 1x1 downsampling shortcut where the stride or the channel
count changes), a global average pool and a fully connected classifier. Layer names are shared
by every representation: ``conv1``, ``maxpool``, ``layer{s}.{b}.conv1|conv2|downsample|add``,
``avgpool``, ``fc``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bitmill.errors import BitmillError


@dataclass(frozen=True)
class Stage:
    """``blocks`` basic blocks of ``channels`` output channels; the first has ``stride``."""

    channels: int
    blocks: int
    stride: int


@dataclass(frozen=True)
class Block:
    """One basic block as built: its name prefix, channels in and out, stride, shortcut."""

    name: str
    in_channels: int
    channels: int
    stride: int

    @property
    def downsample(self) -> bool:
        """Whether the shortcut is a 1x1 convolution (stride or channel count changes)."""
        return self.stride != 1 or self.in_channels != self.channels


@dataclass(frozen=True)
class ResNetArch:
    """Stem (kernel, stride, max-pool) and stages; the stem outputs the first stage's width."""

    name: str
    stages: tuple[Stage, ...]
    stem_kernel: int
    stem_stride: int
    stem_maxpool: bool

    @property
    def stem_channels(self) -> int:
        return self.stages[0].channels

    @property
    def features(self) -> int:
        """Channels into the classifier."""
        return self.stages[-1].channels

    def gemm_layers(self) -> tuple[str, ...]:
        """Names of the convolution and dense layers, in order."""
        names = ["conv1"]
        for b in self.blocks():
            names += [f"{b.name}.conv1", f"{b.name}.conv2"] + ([f"{b.name}.downsample"] if b.downsample else [])
        return tuple(names + ["fc"])

    def blocks(self) -> Iterator[Block]:
        """Every basic block in order."""
        cin = self.stem_channels
        for si, st in enumerate(self.stages, start=1):
            for bi in range(st.blocks):
                yield Block(f"layer{si}.{bi}", cin, st.channels, st.stride if bi == 0 else 1)
                cin = st.channels


# name -> (blocks per stage, default width of the first stage, stem kernel, stride, max-pool)
_FAMILY = {
    "resnet8": ((1, 1, 1), 16, 3, 1, False),       # CIFAR-style, for fast tests
    "resnet20": ((3, 3, 3), 16, 3, 1, False),      # CIFAR-style
    "resnet18": ((2, 2, 2, 2), 64, 7, 2, True),    # ImageNet-style
}
MODELS = tuple(_FAMILY)


def arch(name: str, width: int | None = None) -> ResNetArch:
    """The named architecture; ``width`` is the first stage's channels (doubling per stage),
    by default 16 (resnet8, resnet20) or 64 (resnet18)."""
    if name not in _FAMILY:
        raise BitmillError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    blocks, default_width, kernel, stride, pool = _FAMILY[name]
    w = default_width if width is None else width
    if isinstance(w, bool) or not isinstance(w, int) or w < 1:
        raise BitmillError(f"width must be a positive integer, not {w!r}")
    stages = tuple(Stage(w << i, n, 1 if i == 0 else 2) for i, n in enumerate(blocks))
    return ResNetArch(name, stages, kernel, stride, pool)
