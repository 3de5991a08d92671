"""`Schedule`: per-layer tiling decisions; `Schedule.to_program` is the only encoder.

Every conv/dense layer runs band by band (a band = consecutive output rows whose input rows fit
half the activation buffer and whose outputs fit half the output buffer), and within a band
output-channel tile by tile (``rows`` channels, half the weight buffer each). Loop order:
band > channel tile > pixel tiles (inside one GEMM instruction). Slots alternate so the load
queue fills one half while the compute queue reads the other (double buffering); dependency
tokens are derived from the slot reads and writes and from DRAM: a load waits for the store
that wrote its bytes, not for the whole previous layer, so a layer's constants, first weights
and (when already in DRAM) first inputs load while the previous layer computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bitmill.config import AccelConfig
from bitmill.isa import Program
from bitmill.compiler.cost import CostEstimate
from bitmill.compiler.ir import Graph

KINDS = ("gemm", "vec", "alias")


@dataclass(frozen=True)
class Traffic:
    """Bytes one layer moves between DRAM and the buffers, per kind."""

    weight: int = 0
    act: int = 0
    param: int = 0
    out: int = 0

    @property
    def loaded(self) -> int:
        return self.weight + self.act + self.param

    @property
    def total(self) -> int:
        return self.loaded + self.out


@dataclass(frozen=True)
class BufferUse:
    """Bytes of one slot of each buffer that one layer uses at most."""

    weight: int = 0
    act: int = 0
    out: int = 0


@dataclass(frozen=True)
class LayerSchedule:
    """Tiling and traffic of one layer, with the cost model's cycle estimate."""

    name: str
    op: str
    kind: str                 # "gemm", "vec" or "alias" (no instructions)
    band_rows: int            # output rows per band
    bands: int
    channel_tiles: int = 0
    array_tiles: int = 0      # R x C tiles over the layer
    loop_order: str = "-"
    k_total: int = 0
    w_bits: int = 0
    a_bits: int = 0
    macs: int = 0
    traffic: Traffic = Traffic()
    buffer_use: BufferUse = BufferUse()
    estimate: CostEstimate = CostEstimate()
    weights_resident: bool = False     # the whole layer's weights in one slot, loaded once
    tile_rows: int = 0        # output channels per channel tile: the array's rows, or fewer
                              # where that many rows of weights do not fit a weight slot

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"layer kind must be one of {', '.join(KINDS)}, not {self.kind!r}")

    @property
    def gemm_split(self) -> tuple[int, ...]:
        """Channel tiles of each GEMM instruction of a band: one per tile when the weights stream
        tile by tile; with resident weights the first tile alone (the next band's inputs are
        synced after it) and the rest in one GEMM that streams them back to back."""
        if not self.weights_resident or self.channel_tiles == 1:
            return (1,) * self.channel_tiles
        return (1, self.channel_tiles - 1)


@dataclass(frozen=True, eq=False)
class Schedule:
    """The lowered network: one layer schedule per node after the input."""

    graph: Graph
    config: AccelConfig
    layers: tuple[LayerSchedule, ...]

    def to_program(self, x: np.ndarray | None = None, reuse_memory: bool = False) -> Program:
        """Instructions and memory image; ``x`` (one image, CHW integers) fills the input;
        ``reuse_memory``: activations share bytes once dead (`emit_program`)."""
        from bitmill.compiler.codegen import emit_program
        return emit_program(self, x, reuse_memory)
