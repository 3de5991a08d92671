"""Board tops: a `bitmill.hw.board.BoardCore` (or, on a variant with SDRAM, a
`bitmill.hw.board_sdram.SdramBoardCore`) on a real board's pins (amaranth-boards), clocked by a
PLL from the board's oscillator and held in reset until the PLL locks. The PLL's second output
is the same clock shifted by half a period: the ``sdram_ps`` domain that clocks the SDRAM chip.

`ecp5_pll_params` finds the ECP5 EHXPLLL dividers for a clock: input divider, feedback divider
and output divider with the phase-frequency detector in 3.125..400 MHz and the VCO in
400..800 MHz (Lattice TN1263), exactly the requested frequency or a ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import ClockDomain, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.lib import io

from bitmill.hw.board import LEDS, BoardCore
from bitmill.hw.board_sdram import SdramBoardCore
from bitmill.hw.boards import BoardVariant
from bitmill.hw.litedram import MODULE, LiteDramCore

PFD_MHZ = (3.125, 400.0)
VCO_MHZ = (400.0, 800.0)
RESET_CYCLES = 16          # cycles of reset after the PLL locks


@dataclass(frozen=True)
class PllParams:
    """EHXPLLL dividers: f_out = f_in * clkfb_div / clki_div, VCO = f_out * clkop_div."""
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def clkop_cphase(self) -> int:
        return (self.clkop_div - 1) // 2

    @property
    def clkos_phase(self) -> tuple[int, int]:
        """(CPHASE, FPHASE) of the second output, ``clkop_div`` VCO periods long like the first,
        half its period later: CPHASE counts VCO periods, FPHASE eighths of one."""
        return self.clkop_cphase + self.clkop_div // 2, 4 * (self.clkop_div % 2)


def ecp5_pll_params(f_in_hz: int, f_out_hz: int) -> PllParams:
    """Dividers that make exactly ``f_out_hz`` from ``f_in_hz``; ValueError when none do."""
    for clki in range(1, 129):
        pfd = f_in_hz / clki / 1e6
        if not PFD_MHZ[0] <= pfd <= PFD_MHZ[1]:
            continue
        for fb in range(1, 81):
            if f_in_hz * fb != f_out_hz * clki:
                continue
            ops = [op for op in range(1, 129) if VCO_MHZ[0] <= f_out_hz * op / 1e6 <= VCO_MHZ[1]]
            if ops:      # the VCO nearest the middle of its range
                return PllParams(clki, fb, min(ops, key=lambda op: abs(f_out_hz * op / 1e6 - sum(VCO_MHZ) / 2)))
    raise ValueError(f"no ECP5 PLL setting makes exactly {f_out_hz / 1e6:g} MHz from {f_in_hz / 1e6:g} MHz "
                     "(PFD 3.125..400 MHz, VCO 400..800 MHz): choose another clock_mhz")


class Ulx3sTop(Elaboratable):
    """The board core of ``variant`` on a Radiona ULX3S: 25 MHz oscillator, PLL, the FT231X
    UART (``uart`` 0), the eight LEDs and, on a variant with SDRAM, the chip behind ``sdram``
    (the ``board`` flavour of a generated LiteDRAM controller). nextpnr derives the PLL
    outputs' clock constraints from the oscillator's (the platform's 25 MHz) and the PLL's
    dividers."""

    def __init__(self, variant: BoardVariant, sdram: LiteDramCore | None = None):
        if (variant.sdram is None) != (sdram is None):
            raise ValueError(f"board {variant.name} needs {'no' if variant.sdram is None else 'an'} SDRAM controller")
        if sdram is not None and sdram.flavour != "board":
            raise ValueError(f"a board top needs the board flavour of the controller, not {sdram.flavour!r}")
        self.variant, self.sdram = variant, sdram
        self.pll = ecp5_pll_params(variant.oscillator_hz, variant.clock_hz)

    def elaborate(self, platform) -> Module:
        m = Module()
        v, pll = self.variant, self.pll
        clk25 = io.Buffer("i", platform.request("clk25", 0, dir="-"))
        m.submodules.clk25 = clk25
        m.domains.sync = ClockDomain("sync")
        locked, clk, clk_ps = Signal(), Signal(), Signal()
        cphase, fphase = pll.clkos_phase
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=str(v.oscillator_hz / 1e6), a_FREQUENCY_PIN_CLKOP=str(v.clock_hz / 1e6),
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
            p_CLKI_DIV=pll.clki_div, p_CLKFB_DIV=pll.clkfb_div, p_CLKOP_DIV=pll.clkop_div,
            p_CLKOP_CPHASE=pll.clkop_cphase, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKOS_ENABLE="ENABLED", p_OUTDIVIDER_MUXB="DIVB", p_CLKOS_DIV=pll.clkop_div,
            p_CLKOS_CPHASE=cphase, p_CLKOS_FPHASE=fphase,
            i_RST=0, i_STDBY=0, i_CLKI=clk25.i, i_CLKFB=clk, i_PHASESEL0=0, i_PHASESEL1=0,
            i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
            i_ENCLKOS=0, o_CLKOP=clk, o_CLKOS=clk_ps, o_LOCK=locked)
        hold = Signal(range(RESET_CYCLES + 1), init=RESET_CYCLES)
        m.domains.hold = ClockDomain("hold", reset_less=True)
        m.domains.sdram_ps = ClockDomain("sdram_ps", reset_less=True)
        m.d.comb += [ClockSignal("sync").eq(clk), ClockSignal("hold").eq(clk), ClockSignal("sdram_ps").eq(clk_ps),
                     ResetSignal("sync").eq(hold != 0)]
        with m.If(~locked):
            m.d.hold += hold.eq(RESET_CYCLES)
        with m.Elif(hold != 0):
            m.d.hold += hold.eq(hold - 1)
        if self.sdram is None:
            m.submodules.core = core = BoardCore(v.accel_config(), v.divisor, v.mem_bytes)
        else:
            platform.add_file(f"{MODULE}.v", self.sdram.verilog)
            m.submodules.core = core = SdramBoardCore(v.accel_config(), v.divisor, self.sdram)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.uart_rx.eq(rx.i), tx.o.eq(core.uart_tx)]
        for i in range(LEDS):
            m.submodules[f"led{i}"] = led = io.Buffer("o", platform.request("led", i, dir="-"))
            m.d.comb += led.o.eq(core.leds[i])
        return m
