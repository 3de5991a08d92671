"""`AxiResponseSlice`: a register stage on an AXI4 link's two response channels (R and B).

The address and write-data channels pass through; every R beat and B response leaves one
cycle after the slave gave it. Each channel is a forward register slice: the slave's
``rready`` / ``bready`` is the master's, or 1 while the register is empty, so beats still
flow one per cycle, and a master that stalls holds them in order, never losing one.

What it is for: a slave answering in ``L - 1`` cycles behind this slice answers in exactly
``L`` (a master that takes every beat and response as it comes, as the accelerator does), and
the slave's read data reach a register without crossing into the master's logic: the board
memory's read data, spread over many block RAMs, arrive at a register of their own.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill.hw.axi import AxiSignature


class AxiResponseSlice(wiring.Component):
    """Members: ``master`` (the master's side, an AXI4 slave port), ``slave`` (the slave's
    side, an AXI4 master port), both `AxiSignature` ``(addr_width, data_bytes, id_width)``."""

    def __init__(self, addr_width: int = 32, data_bytes: int = 4, id_width: int = 1):
        sig = AxiSignature(addr_width, data_bytes, id_width)
        super().__init__({"master": In(sig), "slave": Out(sig)})

    def elaborate(self, platform) -> Module:
        m = Module()
        up, down = self.master, self.slave
        for ch in ("ar", "aw"):
            for f in ("id", "addr", "len", "size", "burst", "valid"):
                m.d.comb += getattr(down, ch + f).eq(getattr(up, ch + f))
            m.d.comb += getattr(up, ch + "ready").eq(getattr(down, ch + "ready"))
        m.d.comb += [down.wdata.eq(up.wdata), down.wstrb.eq(up.wstrb), down.wlast.eq(up.wlast),
                     down.wvalid.eq(up.wvalid), up.wready.eq(down.wready)]
        self._slice(m, "r", ("id", "data", "resp", "last"))
        self._slice(m, "b", ("id", "resp"))
        return m

    def _slice(self, m: Module, ch: str, fields: tuple) -> None:
        """Channel ``ch``'s payload and ``valid`` registered; taken from the slave whenever
        the register is empty or the master takes what it holds."""
        up, down = self.master, self.slave
        valid = Signal(name=f"{ch}_held")
        take = Signal(name=f"{ch}_take")
        m.d.comb += [take.eq(~valid | getattr(up, ch + "ready")),
                     getattr(down, ch + "ready").eq(take), getattr(up, ch + "valid").eq(valid)]
        with m.If(take):
            m.d.sync += valid.eq(getattr(down, ch + "valid"))
            m.d.sync += [getattr(up, ch + f).eq(getattr(down, ch + f)) for f in fields]
