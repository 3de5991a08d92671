"""`ByteToAxi`: the host link's byte port (`bitmill.hw.host_bridge.BytePortSignature`) as an
AXI4 master of single-beat transactions, for a memory that only an AXI port reaches (the
board's SDRAM). A write is one full-width beat whose strobe enables the addressed byte (the
byte repeated on every lane); a read takes the addressed byte lane of one beat. ``ack`` comes
with the write response or the read beat; requests wait while ``hold`` is high.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill.hw.axi import BURST_INCR, AxiSignature
from bitmill.hw.host_bridge import BytePortSignature


class ByteToAxi(wiring.Component):
    """Members: ``bytes`` (In `BytePortSignature`), ``axi`` (Out `AxiSignature`), ``hold``
    (In 1)."""

    def __init__(self, addr_width: int, data_bytes: int):
        self._axi = AxiSignature(32, data_bytes, 1)
        super().__init__({"bytes": In(BytePortSignature(addr_width)), "axi": Out(self._axi), "hold": In(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        port, axi, b = self.bytes, self.axi, self._axi.data_bytes
        lane_bits = (b - 1).bit_length()
        lane = Signal(max(1, lane_bits))
        if lane_bits:
            m.d.comb += lane.eq(port.addr[:lane_bits])
        aligned = (port.addr >> lane_bits) << lane_bits
        m.d.comb += [axi.awaddr.eq(aligned), axi.araddr.eq(aligned), axi.awsize.eq(self._axi.size),
                     axi.arsize.eq(self._axi.size), axi.awburst.eq(BURST_INCR), axi.arburst.eq(BURST_INCR),
                     axi.wdata.eq(port.wdata.replicate(b)), axi.wstrb.eq(1 << lane), axi.wlast.eq(1),
                     port.rdata.eq(axi.rdata.word_select(lane, 8))]
        aw_sent, w_sent = Signal(), Signal()
        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += [aw_sent.eq(0), w_sent.eq(0)]
                with m.If(port.valid & ~self.hold):
                    m.next = "REQUEST"
            with m.State("REQUEST"):
                with m.If(port.write):
                    m.d.comb += [axi.awvalid.eq(~aw_sent), axi.wvalid.eq(~w_sent)]
                    aw_now = aw_sent | axi.awready
                    w_now = w_sent | axi.wready
                    m.d.sync += [aw_sent.eq(aw_now), w_sent.eq(w_now)]
                    with m.If(aw_now & w_now):
                        m.next = "RESPONSE"
                with m.Else():
                    m.d.comb += axi.arvalid.eq(1)
                    with m.If(axi.arready):
                        m.next = "RESPONSE"
            with m.State("RESPONSE"):
                m.d.comb += [axi.bready.eq(port.write), axi.rready.eq(~port.write)]
                with m.If(port.write & axi.bvalid | ~port.write & axi.rvalid):
                    m.d.comb += port.ack.eq(1)
                    m.next = "IDLE"
        return m
