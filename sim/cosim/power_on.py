"""Power-on reset for Verilated tops: the ``sync`` domain clocked from a ``clk`` port and held
in reset for the first cycles by a counter's initial value, so that the top has no reset
port. Verilator evaluates logic that depends on a top-level input at every evaluation; with
the reset a register, the logic it gates is evaluated at clock edges only."""

from __future__ import annotations

from amaranth import ClockDomain, Module, Signal, Value

POR_CYCLES = 3      # cycles in reset after power-on (a harness waits them out)


def power_on_reset(m: Module, clk: Value, cycles: int = POR_CYCLES) -> None:
    """Add domain ``sync`` to ``m``, clocked by ``clk``, in reset for ``cycles`` cycles after
    power-on."""
    m.domains.sync = sync = ClockDomain("sync")
    m.domains.por = por = ClockDomain("por", reset_less=True)
    hold = Signal(range(cycles + 1), init=cycles)
    with m.If(hold != 0):
        m.d.por += hold.eq(hold - 1)
    m.d.comb += [sync.clk.eq(clk), por.clk.eq(clk), sync.rst.eq(hold != 0)]
