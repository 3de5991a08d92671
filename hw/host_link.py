"""`HostLink`: the board's end of the host link, the UART (`bitmill.hw.uart`) and the request
bridge (`bitmill.hw.host_bridge`) behind two pins.

A request whose bytes stop for `bitmill.hostlink.TIMEOUT_BYTES` byte times is answered TIMEOUT:
the bridge's timeout is that many byte times of ``divisor`` cycles per bit.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill import hostlink
from bitmill.hw.host_bridge import HostBridge
from bitmill.hw.uart import BITS_PER_BYTE, UartRx, UartTx


class HostLink(wiring.Component):
    """Members: ``rx`` (In 1, the host's TX line), ``tx`` (Out 1), ``regs`` (Out AXI4-Lite),
    ``mem`` (Out byte port), ``busy`` (Out 1), ``frame_error`` (Out 1, pulse)."""

    def __init__(self, divisor: int, mem_bytes: int, reg_addr_width: int):
        self.uart_rx, self.uart_tx = UartRx(divisor), UartTx(divisor)
        self.bridge = HostBridge(mem_bytes, reg_addr_width, hostlink.TIMEOUT_BYTES * BITS_PER_BYTE * divisor)
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1),
                          "regs": Out(self.bridge.signature.members["regs"].signature),
                          "mem": Out(self.bridge.signature.members["mem"].signature),
                          "busy": Out(1), "frame_error": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.uart_rx, m.submodules.uart_tx = self.uart_rx, self.uart_tx
        m.submodules.bridge = bridge = self.bridge
        m.d.comb += [self.uart_rx.rx.eq(self.rx), self.tx.eq(self.uart_tx.tx),
                     bridge.rx.payload.eq(self.uart_rx.data.payload), bridge.rx.valid.eq(self.uart_rx.data.valid),
                     self.busy.eq(bridge.busy), self.frame_error.eq(self.uart_rx.frame_error)]
        wiring.connect(m, bridge.tx, self.uart_tx.data)
        wiring.connect(m, wiring.flipped(self.regs), bridge.regs)
        wiring.connect(m, wiring.flipped(self.mem), bridge.mem)
        return m
