"""Board tops: a `bitmill.hw.board.BoardCore` (or, on a variant with SDRAM, a
`bitmill.hw.board_sdram.SdramBoardCore`) on a real board's pins (amaranth-boards), clocked by a
PLL from the board's oscillator and held in reset until the PLL locks. The PLL's second output
clocks the SDRAM chip (``sdram_ps``): the system clock, or twice it when the controller runs the
chip at twice its clock (`bitmill.hw.litedram`), shifted by half its period; the third
(``sdram_2x``) is twice the system clock in phase with it, for the controller's I/O registers.

`ecp5_pll_params` finds the ECP5 EHXPLLL dividers for a clock (and twice it): input divider,
feedback divider and output dividers with the phase-frequency detector in 3.125..400 MHz and the VCO in
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


def phase_setting(div: int, degrees: float) -> tuple[int, int]:
    """(CPHASE, FPHASE) of an EHXPLLL output divided by ``div`` that lags by ``degrees`` of its
    own period: CPHASE counts VCO periods from ``div - 1`` (no lag), FPHASE eighths of one."""
    eighths = round(degrees * div / 45)
    return (eighths >> 3) + div - 1, eighths & 7


@dataclass(frozen=True)
class PllParams:
    """EHXPLLL dividers: f_out = f_in * clkfb_div / clki_div, VCO = f_out * clkop_div; the
    SDRAM chip's clocks run at ``ratio`` times f_out (VCO / (clkop_div / ratio))."""
    clki_div: int
    clkfb_div: int
    clkop_div: int
    ratio: int = 1

    @property
    def fast_div(self) -> int:
        """The divider of the outputs at ``ratio`` times f_out."""
        return self.clkop_div // self.ratio

    @property
    def clkop_phase(self) -> tuple[int, int]:
        return phase_setting(self.clkop_div, 0)

    @property
    def clkos_phase(self) -> tuple[int, int]:
        """The chip's clock (CLKOS, ``ratio`` times f_out): half its period later than CLKOP."""
        return phase_setting(self.fast_div, 180)

    @property
    def clkos2_phase(self) -> tuple[int, int]:
        """The chip's registers' clock (CLKOS2, ``ratio`` times f_out): in phase with CLKOP."""
        return phase_setting(self.fast_div, 0)


def ecp5_pll_params(f_in_hz: int, f_out_hz: int, ratio: int = 1) -> PllParams:
    """Dividers that make exactly ``f_out_hz`` and ``ratio`` times it from ``f_in_hz``;
    ValueError when none do."""
    if ratio not in (1, 2):
        raise ValueError(f"ratio must be 1 or 2, not {ratio!r}")
    for clki in range(1, 129):
        pfd = f_in_hz / clki / 1e6
        if not PFD_MHZ[0] <= pfd <= PFD_MHZ[1]:
            continue
        for fb in range(1, 81):
            if f_in_hz * fb != f_out_hz * clki:
                continue
            ops = [op for op in range(ratio, 129, ratio) if VCO_MHZ[0] <= f_out_hz * op / 1e6 <= VCO_MHZ[1]]
            if ops:      # the VCO nearest the middle of its range
                return PllParams(clki, fb, min(ops, key=lambda op: abs(f_out_hz * op / 1e6 - sum(VCO_MHZ) / 2)), ratio)
    twice = f" and {ratio * f_out_hz / 1e6:g}" if ratio > 1 else ""
    raise ValueError(f"no ECP5 PLL setting makes exactly {f_out_hz / 1e6:g}{twice} MHz from {f_in_hz / 1e6:g} MHz "
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
        self.pll = ecp5_pll_params(variant.oscillator_hz, variant.clock_hz, 1 if sdram is None else sdram.clock_ratio)

    def elaborate(self, platform) -> Module:
        m = Module()
        v, pll = self.variant, self.pll
        clk25 = io.Buffer("i", platform.request("clk25", 0, dir="-"))
        m.submodules.clk25 = clk25
        m.domains.sync = ClockDomain("sync")
        locked, clk, clk_ps, clk_2x = Signal(), Signal(), Signal(), Signal()
        (op_c, op_f), (os_c, os_f), (os2_c, os2_f) = pll.clkop_phase, pll.clkos_phase, pll.clkos2_phase
        fast_mhz = str(pll.ratio * v.clock_hz / 1e6)
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=str(v.oscillator_hz / 1e6), a_FREQUENCY_PIN_CLKOP=str(v.clock_hz / 1e6),
            a_FREQUENCY_PIN_CLKOS=fast_mhz, a_FREQUENCY_PIN_CLKOS2=fast_mhz,
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
            p_CLKI_DIV=pll.clki_div, p_CLKFB_DIV=pll.clkfb_div, p_CLKOP_DIV=pll.clkop_div,
            p_CLKOP_CPHASE=op_c, p_CLKOP_FPHASE=op_f, p_FEEDBK_PATH="CLKOP",
            p_CLKOS_ENABLE="ENABLED", p_OUTDIVIDER_MUXB="DIVB", p_CLKOS_DIV=pll.fast_div,
            p_CLKOS_CPHASE=os_c, p_CLKOS_FPHASE=os_f,
            p_CLKOS2_ENABLE="ENABLED", p_OUTDIVIDER_MUXC="DIVC", p_CLKOS2_DIV=pll.fast_div,
            p_CLKOS2_CPHASE=os2_c, p_CLKOS2_FPHASE=os2_f,
            i_RST=0, i_STDBY=0, i_CLKI=clk25.i, i_CLKFB=clk, i_PHASESEL0=0, i_PHASESEL1=0,
            i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
            i_ENCLKOS=0, i_ENCLKOS2=0, o_CLKOP=clk, o_CLKOS=clk_ps, o_CLKOS2=clk_2x, o_LOCK=locked)
        hold = Signal(range(RESET_CYCLES + 1), init=RESET_CYCLES)
        # the reset from a register (on from power-up): no logic between it and the many
        # register resets it reaches across the chip
        reset = Signal(init=1, name="reset_q")
        m.d.hold += reset.eq(hold != 0)
        m.domains.hold = ClockDomain("hold", reset_less=True)
        m.domains.sdram_ps = ClockDomain("sdram_ps", reset_less=True)
        m.domains.sdram_2x = ClockDomain("sdram_2x", reset_less=True)
        m.d.comb += [ClockSignal("sync").eq(clk), ClockSignal("hold").eq(clk), ClockSignal("sdram_ps").eq(clk_ps),
                     ClockSignal("sdram_2x").eq(clk_2x), ResetSignal("sync").eq(reset)]
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
