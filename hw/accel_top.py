"""`SerialAccelTop`: the whole accelerator behind a few pins, so that place-and-route fits a
real package (the AXI ports have hundreds of bits) and measures the accelerator's own paths.

Every input of the ``host`` (AXI4-Lite slave) and ``mem`` (AXI4 master) ports is driven by a
flip-flop of an input shift chain; every output of ``host``, ``mem``, ``irq`` and ``running``
is captured by a flip-flop of an output shift chain. Pins: ``sin`` (`PIN_BITS`), ``shift``,
``sout`` (`PIN_BITS`). While ``shift`` is high both chains move `PIN_BITS` bits per cycle
(``sin`` enters the input chain, ``sout`` is the output chain's end); while it is low the input
chain holds and the output chain captures the accelerator's outputs. So each accelerator
input and output has a register right at the port, as behind a registered AXI interconnect:
the wrapper adds one flip-flop per AXI input bit, one flip-flop and one 2:1 multiplexer (a
LUT) per output bit, and nothing on the accelerator's internal paths. ``trace`` (co-simulation
only) is left unconnected, so synthesis removes it as on a board.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill.hw.accel import Accelerator

PIN_BITS = 8
BOARD_MEMBERS = ("host", "mem", "irq", "running")    # `Accelerator` members wired to the chains


def _port_bits(accel: Accelerator) -> tuple[list, list]:
    """(inputs, outputs) of ``accel``'s board ports as lists of Amaranth values, in the order
    of the signature."""
    ins, outs = [], []
    for path, member, value in accel.signature.flatten(accel):
        if path[0] not in BOARD_MEMBERS:
            continue
        (ins if member.flow == In else outs).append(Value.cast(value))
    return ins, outs


def _chain_bits(width: int) -> int:
    """``width`` rounded up to whole `PIN_BITS` beats."""
    return -(-width // PIN_BITS) * PIN_BITS


class SerialAccelTop(wiring.Component):
    """Members: ``sin`` (In `PIN_BITS`), ``shift`` (In 1), ``sout`` (Out `PIN_BITS`)."""

    def __init__(self, accel: Accelerator):
        if not isinstance(accel, Accelerator):
            raise TypeError(f"accel must be an Accelerator, not {type(accel).__name__}")
        self.accel = accel
        ins, outs = _port_bits(accel)
        self.in_bits = sum(len(v) for v in ins)
        self.out_bits = sum(len(v) for v in outs)
        super().__init__({"sin": In(PIN_BITS), "shift": In(1), "sout": Out(PIN_BITS)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.accel = accel = self.accel
        ins, outs = _port_bits(accel)
        in_chain = Signal(_chain_bits(self.in_bits))
        out_chain = Signal(_chain_bits(self.out_bits))
        with m.If(self.shift):
            m.d.sync += [in_chain.eq(Cat(self.sin, in_chain)[:len(in_chain)]),
                         out_chain.eq(out_chain << PIN_BITS)]
        with m.Else():
            m.d.sync += out_chain.eq(Cat(*outs))
        m.d.comb += [Cat(*ins).eq(in_chain[:self.in_bits]),
                     self.sout.eq(out_chain[-PIN_BITS:])]
        return m
