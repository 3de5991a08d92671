"""`NarrowTop`: the tile engine behind a 16-bit bus, so that place-and-route fits the pins of
a real package (the engine's buffer words are hundreds of bits wide).

Bus beats (``bus_valid`` high, ``bus_op`` selects):

* ``SHIFT``: shift ``bus_data`` into the word register (the last beat ends in the low bits);
* ``LOAD_W`` / ``LOAD_A``: write the word register to weight / activation buffer address
  ``bus_data``;
* ``CMD``: issue tile command ``bus_data`` (`bitmill.hw.sequencer.command_layout`).

``res_addr`` / ``res_data`` / ``busy`` / ``done`` are the engine's.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, signed
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from bitmill.hw.engine import TileEngine
from bitmill.hw.sequencer import command_layout

BUS_BITS = 16


class BusOp(enum.Enum, shape=2):
    SHIFT = 0
    LOAD_W = 1
    LOAD_A = 2
    CMD = 3


class NarrowTop(wiring.Component):
    """Members: ``bus_data`` (In 16), ``bus_op`` (In `BusOp`), ``bus_valid`` (In),
    ``res_addr`` (In), ``res_data`` (Out), ``busy`` and ``done`` (Out)."""

    def __init__(self, engine: TileEngine):
        if not isinstance(engine, TileEngine):
            raise TypeError(f"engine must be a TileEngine, not {type(engine).__name__}")
        if engine.depth > 1 << BUS_BITS or command_layout(engine.max_chunks).size > BUS_BITS:
            raise ValueError(f"engine buffers of depth {engine.depth} and commands of "
                             f"{command_layout(engine.max_chunks).size} bits exceed a "
                             f"{BUS_BITS}-bit bus")
        self.engine = engine
        super().__init__({
            "bus_data": In(BUS_BITS), "bus_op": In(BusOp), "bus_valid": In(1),
            "res_addr": In(range(engine.rows * engine.cols)),
            "res_data": Out(signed(engine.acc_width)), "busy": Out(1), "done": Out(1),
        })

    @property
    def latency(self) -> int:
        return self.engine.latency

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.engine = engine = self.engine
        word = Signal(engine.word_bits)
        beat = self.bus_valid
        with m.If(beat & (self.bus_op == BusOp.SHIFT)):
            m.d.sync += word.eq(Cat(self.bus_data, word)[:engine.word_bits])
        m.d.comb += [
            engine.load.valid.eq(beat & ((self.bus_op == BusOp.LOAD_W)
                                         | (self.bus_op == BusOp.LOAD_A))),
            engine.load.payload.target.eq(self.bus_op == BusOp.LOAD_A),
            engine.load.payload.addr.eq(self.bus_data),
            engine.load.payload.data.eq(word),
            engine.cmd.valid.eq(beat & (self.bus_op == BusOp.CMD)),
            engine.cmd.payload.eq(self.bus_data),
            engine.res_addr.eq(self.res_addr),
            self.res_data.eq(engine.res_data), self.busy.eq(engine.busy),
            self.done.eq(engine.done),
        ]
        return m
