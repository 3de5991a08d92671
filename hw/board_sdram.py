"""`SdramBoardCore`: the accelerator with its memory in the board's SDRAM
(`bitmill.hw.sdram_memory.SdramMemory`, a LiteDRAM controller), behind the same two UART pins
and eight LEDs as `bitmill.hw.board.BoardCore`.

The accelerator's AXI port and the host link's byte port (`bitmill.hw.byte_axi.ByteToAxi`)
are two user ports of the controller; the host's memory requests wait while a program runs, as
on the on-chip board. The SDRAM's timing is the controller's, not the config's ``mem_latency``
and ``mem_bytes_per_cycle``, so the cycles differ from the simulator's (`bitmill board run`
reports by how much). LED 5: the SDRAM is initialised; the others as on `BoardCore`.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill.config import AccelConfig
from bitmill.hw.accel import Accelerator
from bitmill.hw.board import LEDS, connect_host, status_leds
from bitmill.hw.byte_axi import ByteToAxi
from bitmill.hw.host_link import HostLink
from bitmill.hw.host_regs import ADDR_WIDTH
from bitmill.hw.litedram import LiteDramCore
from bitmill.hw.sdram_memory import SdramMemory

READY_LED = 5


class SdramBoardCore(wiring.Component):
    """Members: ``uart_rx`` (In 1), ``uart_tx`` (Out 1), ``leds`` (Out 8)."""

    def __init__(self, cfg: AccelConfig, divisor: int, core: LiteDramCore):
        if not isinstance(cfg, AccelConfig):
            raise TypeError(f"cfg must be an AccelConfig, not {type(cfg).__name__}")
        if core.data_bytes != cfg.mem_bytes_per_cycle:
            raise ValueError(f"the controller's ports carry {core.data_bytes} bytes per beat, the "
                             f"config's AXI port {cfg.mem_bytes_per_cycle}")
        self.cfg = cfg
        self.memory = SdramMemory(core)
        self.link = HostLink(divisor, core.mem_bytes, ADDR_WIDTH)
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "leds": Out(LEDS)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.accel = accel = Accelerator(self.cfg)
        m.submodules.memory = mem = self.memory
        m.submodules.link = link = self.link
        m.submodules.bytes = adapter = ByteToAxi(link.mem.addr.shape().width, mem.core.data_bytes)
        wiring.connect(m, accel.mem, mem.axi)
        wiring.connect(m, adapter.axi, mem.host)
        connect_host(m, self, accel, link, adapter)
        leds = status_leds(m, accel, link)
        m.d.comb += [self.leds.eq(leds), self.leds[READY_LED].eq(mem.ready)]
        return m
