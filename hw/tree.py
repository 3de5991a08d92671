"""Pipelined adder tree (a popcount when the inputs are single bits)."""

from __future__ import annotations

from amaranth import Module, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bitmill.hw.params import check_positive
from bitmill.timing import adder_tree_stages


def tree_output_shape(lanes: int, shape: Shape) -> Shape:
    """Shape that holds the sum of ``lanes`` values of ``shape``."""
    grow = (lanes - 1).bit_length()
    return signed(shape.width + grow) if shape.signed else unsigned(shape.width + grow)


class AdderTree(wiring.Component):
    """Sum of ``lanes`` values, one pipeline register after every two adder levels and at the
    output (`bitmill.timing.adder_tree_stages`), so the clock never waits for a deep tree.

    Members: ``inputs`` (In, ``lanes`` values of ``shape``), ``sum`` (Out, registered).
    """

    def __init__(self, lanes: int, shape: Shape | int = 1):
        self._lanes = check_positive("lanes", lanes, 4096)
        self._shape = Shape.cast(shape)
        if self._shape.width < 1:
            raise ValueError(f"shape must be at least 1 bit wide, not {self._shape!r}")
        super().__init__({
            "inputs": In(data.ArrayLayout(self._shape, lanes)),
            "sum": Out(tree_output_shape(lanes, self._shape)),
        })

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def latency(self) -> int:
        """Cycles from ``inputs`` to ``sum``."""
        return adder_tree_stages(self._lanes)

    def elaborate(self, platform) -> Module:
        m = Module()
        level: list[Value] = [self.inputs[k] for k in range(self._lanes)]
        depth = 0
        while len(level) > 1:
            depth += 1
            pairs = [level[k] + level[k + 1] for k in range(0, len(level) - 1, 2)]
            level = pairs + ([level[-1]] if len(level) % 2 else [])
            if depth % 2 == 0 and len(level) > 1:
                level = [self._register(m, v, f"l{depth}_{k}") for k, v in enumerate(level)]
        out = Signal(self.sum.shape(), name="sum_reg", reset_less=True)
        m.d.sync += out.eq(level[0])
        m.d.comb += self.sum.eq(out)
        return m

    @staticmethod
    def _register(m: Module, value: Value, name: str) -> Signal:
        reg = Signal(value.shape(), name=name, reset_less=True)
        m.d.sync += reg.eq(value)
        return reg
