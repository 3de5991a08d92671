"""`BoardCore`: everything a board with on-chip memory carries, behind two UART pins and eight
LEDs: the accelerator, its memory (`bitmill.hw.axi_sram.AxiSram` in block RAM with registered
reads, each block RAM's read data in its own output register, and each bank written from
registers of its own: the config's ``mem_latency`` and ``mem_bytes_per_cycle`` exactly, so the
board runs with the simulator's cycles) and the host link (`bitmill.hw.host_link.HostLink`).

The host reaches the accelerator's registers at any time and its memory while no program runs:
a memory request of the host link waits while ``running`` is high (the AXI port owns the
memory then). LEDs: 0 a program runs, 1 DONE, 2 an error flag is set, 3 the host link is busy,
4 a UART byte had a bad stop bit (until the next request), 7 blinks (the clock runs).
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill.config import AccelConfig
from bitmill.hw.accel import Accelerator
from bitmill.hw.axi_sram import BUFFERED_LATENCY, AxiSram, backdoor_signature
from bitmill.hw.host_bridge import BytePortSignature
from bitmill.hw.host_link import HostLink
from bitmill.hw.host_regs import ADDR_WIDTH

LEDS = 8
BLINK_BIT = 24           # LED 7 toggles every 2^24 cycles


class ByteToWord(wiring.Component):
    """The host link's byte port on the memory's word backdoor: a request's word address is
    registered, then read (the word ``read_latency`` cycles after its address), the word
    registered, and its byte answered; a write merges the byte into the registered word,
    registers the merged word (the memory's write data then come from a register, not from
    the host link's buffer) and writes it back in the answering cycle, then waits
    ``write_delay`` cycles (the memory's, until the word written can be read back).
    Requests wait while ``hold`` is high."""

    def __init__(self, data_bytes: int, words: int, read_latency: int = 1, write_delay: int = 0):
        if read_latency not in (1, 2, 3):
            raise ValueError(f"read_latency must be 1, 2 or 3, not {read_latency!r}")
        if write_delay not in (0, 1):
            raise ValueError(f"write_delay must be 0 or 1, not {write_delay!r}")
        self.read_latency, self.write_delay = read_latency, write_delay
        self.data_bytes = data_bytes
        byte_addr_width = max(1, (data_bytes * words - 1).bit_length())
        super().__init__({"bytes": In(BytePortSignature(byte_addr_width)),
                          "words": Out(backdoor_signature(data_bytes, words)), "hold": In(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        b, port, bd = self.data_bytes, self.bytes, self.words
        lane = port.addr[:max(1, (b - 1).bit_length())] if b > 1 else 0
        # the word's address from a register (set as the request is taken): nothing but the
        # memory's port multiplexer between it and the block RAMs' address pins
        addr = Signal.like(bd.addr, name="word_addr", reset_less=True)
        m.d.comb += bd.addr.eq(addr)
        word = Signal(8 * b)                 # the word read, registered
        written = Signal(8 * b, reset_less=True)   # the word to write back, registered
        byte = word.word_select(lane, 8) if b > 1 else word
        merged = Signal(8 * b)
        m.d.comb += merged.eq(word)
        if b > 1:
            m.d.comb += merged.word_select(lane, 8).eq(port.wdata)
        else:
            m.d.comb += merged.eq(port.wdata)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(port.valid & ~self.hold):
                    m.d.sync += addr.eq(port.addr >> (b - 1).bit_length())
                    m.next = "ADDRESS"
            with m.State("ADDRESS"):            # the read of the word starts
                m.d.comb += bd.active.eq(1)
                m.next = "READ" if self.read_latency == 1 else "WAIT2"
            for k in range(2, self.read_latency + 1):   # the later cycles of a registered read
                with m.State(f"WAIT{k}"):
                    m.d.comb += bd.active.eq(1)
                    m.next = "READ" if k == self.read_latency else f"WAIT{k + 1}"
            with m.State("READ"):
                m.d.comb += bd.active.eq(1)
                m.d.sync += word.eq(bd.rdata)
                m.next = "MERGE"
            with m.State("MERGE"):
                m.d.comb += bd.active.eq(1)
                m.d.sync += written.eq(merged)
                m.next = "ANSWER"
            with m.State("ANSWER"):
                m.d.comb += [bd.active.eq(1), bd.wdata.eq(written), bd.we.eq(port.write),
                             port.ack.eq(1), port.rdata.eq(byte)]
                m.next = "SETTLE" if self.write_delay else "IDLE"
            if self.write_delay:
                with m.State("SETTLE"):         # the memory writes the word in this cycle
                    m.next = "IDLE"
        return m


class BoardCore(wiring.Component):
    """Members: ``uart_rx`` (In 1), ``uart_tx`` (Out 1), ``leds`` (Out 8)."""

    def __init__(self, cfg: AccelConfig, divisor: int, mem_bytes: int):
        if not isinstance(cfg, AccelConfig):
            raise TypeError(f"cfg must be an AccelConfig, not {type(cfg).__name__}")
        if cfg.mem_latency < BUFFERED_LATENCY:
            raise ValueError(f"{cfg.name}: a board's memory answers in mem_latency >= {BUFFERED_LATENCY} "
                             f"cycles (its registered read and write ports), not {cfg.mem_latency}")
        self.cfg = cfg
        self.memory = AxiSram(cfg.mem_bytes_per_cycle, cfg.mem_latency, mem_bytes, registered=True)
        self.link = HostLink(divisor, mem_bytes, ADDR_WIDTH)
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "leds": Out(LEDS)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.accel = accel = Accelerator(self.cfg)
        m.submodules.memory = mem = self.memory
        m.submodules.link = link = self.link
        m.submodules.bytes = adapter = ByteToWord(mem.data_bytes, mem.words, mem.read_latency, mem.write_delay)
        wiring.connect(m, accel.mem, mem.bus)
        wiring.connect(m, adapter.words, mem.backdoor)
        connect_host(m, self, accel, link, adapter)
        m.d.comb += self.leds.eq(status_leds(m, accel, link))
        return m


def connect_host(m: Module, core, accel: Accelerator, link: HostLink, adapter) -> None:
    """The host link on ``core``'s UART pins, on the accelerator's registers, and on memory
    through ``adapter`` (a byte port with a ``hold`` input), held while a program runs."""
    wiring.connect(m, link.regs, accel.host)
    wiring.connect(m, link.mem, adapter.bytes)
    m.d.comb += [adapter.hold.eq(accel.running), link.rx.eq(core.uart_rx), core.uart_tx.eq(link.tx)]


def status_leds(m: Module, accel: Accelerator, link: HostLink):
    """The eight LEDs of a board core (see the module docstring), driven from ``accel`` and
    ``link``; adds the blink counter and the bad-stop-bit flag to ``m``."""
    bad_stop, blink = Signal(), Signal(BLINK_BIT + 1)
    m.d.sync += blink.eq(blink + 1)
    with m.If(link.frame_error):
        m.d.sync += bad_stop.eq(1)
    with m.Elif(link.busy):
        m.d.sync += bad_stop.eq(0)
    return Cat(accel.running, accel.irq, accel.error, link.busy, bad_stop, 0, 0, blink[BLINK_BIT])
