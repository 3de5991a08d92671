"""UART 8N1 receiver and transmitter, ``divisor`` clock cycles per bit.

`UartTx`: takes a byte from its ``data`` stream when idle and sends start bit, 8 data bits
(LSB first) and one stop bit; ``tx`` idles high. A byte occupies exactly ``10 * divisor``
cycles, and the next byte's start bit follows the stop bit directly when ``data`` is valid.

`UartRx`: ``rx`` passes two synchronising flip-flops; a falling edge starts a byte, the start
bit is checked half a bit later (a shorter low pulse is a glitch and ignored), then every bit
is sampled in its middle. A byte whose stop bit is high appears on ``data`` for one cycle
(``valid``, no back-pressure); a low stop bit is a framing error (``frame_error`` pulses, the
byte is dropped) and the receiver waits for the line to go high before the next start bit.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

MIN_DIVISOR = 4
SYNC_STAGES = 2          # flip-flops between the rx pin and the receiver
BITS_PER_BYTE = 10       # start, 8 data, stop


def _check_divisor(divisor: int) -> None:
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an integer >= {MIN_DIVISOR} (clock cycles per bit), "
                         f"not {divisor!r}")


def divisor_for(clock_hz: int, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clock_hz``; ValueError when the nearest integer
    is off by more than 2% (a receiver sampling mid-bit tolerates about 4% over a byte)."""
    if clock_hz <= 0 or baud <= 0:
        raise ValueError(f"clock and baud rate must be positive, not {clock_hz} Hz and {baud} Bd")
    divisor = round(clock_hz / baud)
    if divisor < MIN_DIVISOR or abs(clock_hz / divisor / baud - 1) > 0.02:
        raise ValueError(f"{baud} Bd is not {clock_hz} Hz divided by an integer >= {MIN_DIVISOR} "
                         "within 2%; choose a clock that is a multiple of the baud rate")
    return divisor


class UartTx(wiring.Component):
    """Members: ``data`` (In stream of 8 bits), ``tx`` (Out 1, idles high), ``busy`` (Out 1)."""

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1), "busy": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        shift = Signal(BITS_PER_BYTE, init=(1 << BITS_PER_BYTE) - 1)
        bits_left = Signal(range(BITS_PER_BYTE + 1))
        timer = Signal(range(self.divisor))
        m.d.comb += [self.tx.eq(shift[0]), self.busy.eq(bits_left != 0),
                     self.data.ready.eq(bits_left == 0)]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [shift.eq(((1 << 9) | (self.data.payload << 1))), bits_left.eq(BITS_PER_BYTE),
                         timer.eq(self.divisor - 1)]
        with m.Elif(bits_left != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq((1 << (BITS_PER_BYTE - 1)) | (shift >> 1)),
                             bits_left.eq(bits_left - 1), timer.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UartRx(wiring.Component):
    """Members: ``rx`` (In 1), ``data`` (Out stream of 8 bits, always ready),
    ``frame_error`` (Out 1, one-cycle pulse)."""

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(8, always_ready=True)),
                          "frame_error": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        sync = [Signal(init=1, name=f"rx_sync{i}") for i in range(SYNC_STAGES)]
        m.d.sync += [sync[0].eq(self.rx)] + [b.eq(a) for a, b in zip(sync, sync[1:])]
        line = sync[-1]
        timer = Signal(range(self.divisor))
        bit = Signal(range(9))
        shift = Signal(8)
        m.d.sync += [self.data.valid.eq(0), self.frame_error.eq(0)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"                      # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bit.eq(0)]
                    m.next = "BITS"
            with m.State("BITS"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(bit == 8):
                    with m.If(line):
                        m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.frame_error.eq(1)
                        m.next = "BREAK"
                with m.Else():
                    m.d.sync += [shift.eq((line << 7) | (shift >> 1)), bit.eq(bit + 1),
                                 timer.eq(self.divisor - 1)]
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m
