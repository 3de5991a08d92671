"""The board side of the host link (`bitmill.hostlink`): requests from a byte stream (the UART
receiver) become AXI4-Lite accesses of the accelerator's registers or byte accesses of the
board's memory, and every request gets one reply on the outgoing byte stream.

Behaviour beyond the protocol module: bytes arriving while a request is checked, executed or
answered are dropped (a byte takes at least 40 cycles, see `bitmill.hw.uart.MIN_DIVISOR`, so
the one-cycle steps between bytes lose none). A write whose length the bridge cannot take
(WRITE_REG not 4, WRITE_MEM not 1..MAX_BLOCK) cannot be framed: the bridge drops bytes until
the line has been silent for ``timeout`` cycles, then answers BAD_LENGTH. WRITE_MEM's payload
goes into a block buffer and reaches memory only after its checksum matched.

Memory port (`BytePortSignature`): the bridge holds ``valid`` with ``addr``, ``write`` and
``wdata`` until the memory answers ``ack`` for one cycle (with ``rdata`` for a read), so any
memory latency works.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from bitmill import hostlink
from bitmill.hostlink import Command, Status
from bitmill.hw.axi_lite import AxiLiteSignature, Resp

HEADER_FIELDS = 7               # command, address[4], length[2] after the sync byte


class BytePortSignature(wiring.Signature):
    """A byte-wide memory port seen from the master (see the module docstring)."""

    def __init__(self, addr_width: int):
        if isinstance(addr_width, bool) or not isinstance(addr_width, int) or not 1 <= addr_width <= 32:
            raise ValueError(f"addr_width must be an integer in 1..32, not {addr_width!r}")
        self.addr_width = addr_width
        super().__init__({"valid": Out(1), "write": Out(1), "addr": Out(addr_width), "wdata": Out(8),
                          "ack": In(1), "rdata": In(8)})

    def __eq__(self, other):
        return isinstance(other, BytePortSignature) and self.addr_width == other.addr_width

    def __hash__(self):
        return hash((BytePortSignature, self.addr_width))


def crc8_next(crc: Value, byte: Value) -> Value:
    """``hostlink.crc8`` of one byte as logic: the CRC after ``byte``. The CRC is linear, so
    each output bit is the XOR of the input bits (of ``crc ^ byte``) whose unit vector sets it."""
    c = crc ^ byte
    columns = [hostlink.crc8(bytes([1 << i])) for i in range(8)]    # image of each input bit
    bits = []
    for out in range(8):
        taps = [c[i] for i in range(8) if columns[i] >> out & 1]
        bit = taps[0]
        for t in taps[1:]:
            bit = bit ^ t
        bits.append(bit)
    return Cat(*bits)


class HostBridge(wiring.Component):
    """Members: ``rx`` (In byte stream, no back-pressure), ``tx`` (Out byte stream),
    ``regs`` (Out AXI4-Lite, 32-bit), ``mem`` (Out `BytePortSignature`), ``busy`` (Out 1:
    a request is being received, executed or answered)."""

    def __init__(self, mem_bytes: int, reg_addr_width: int, timeout: int):
        for name, value, low in (("mem_bytes", mem_bytes, 1), ("timeout", timeout, 1),
                                 ("reg_addr_width", reg_addr_width, 3)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, not {value!r}")
        if mem_bytes > 1 << 32 or reg_addr_width > 32:
            raise ValueError("mem_bytes must be at most 2**32 and reg_addr_width at most 32")
        self.mem_bytes, self.reg_addr_width, self.timeout = mem_bytes, reg_addr_width, timeout
        super().__init__({
            "rx": In(stream.Signature(8, always_ready=True)), "tx": Out(stream.Signature(8)),
            "regs": Out(AxiLiteSignature(reg_addr_width, 32)),
            "mem": Out(BytePortSignature(max(1, (mem_bytes - 1).bit_length()))), "busy": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.buffer = buf = Memory(shape=8, depth=hostlink.MAX_BLOCK, init=[])
        s = _State(self)
        wr, rd = buf.write_port(), buf.read_port(transparent_for=())
        m.d.comb += rd.addr.eq(s.count)
        with m.FSM() as fsm:
            self._receive(m, s, wr)
            self._execute(m, s, rd)
            self._answer(m, s)
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m

    # --- receiving a request -------------------------------------------------------------
    def _receive(self, m, s, wr) -> None:
        rx = self.rx
        with m.State("IDLE"):
            with m.If(rx.valid & (rx.payload == hostlink.SYNC_REQUEST)):
                m.d.sync += [s.count.eq(0), s.crc.eq(0), s.timer.eq(0)]
                m.next = "HEADER"
        with m.State("HEADER"):
            self._timeout(m, s)
            with m.If(rx.valid):
                m.d.sync += [s.crc.eq(crc8_next(s.crc, rx.payload)), s.count.eq(s.count + 1),
                             Cat(s.cmd, s.addr, s.length).eq(Cat(s.cmd, s.addr, s.length, rx.payload)[8:])]
                with m.If(s.count == HEADER_FIELDS - 1):
                    m.next = "FRAME"
        with m.State("FRAME"):
            m.d.sync += [s.count.eq(0), s.timer.eq(0)]
            with m.If(s.cmd == Command.WRITE_REG):
                self._payload_or_drain(m, s, s.length == hostlink.REGISTER_BYTES)
            with m.Elif(s.cmd == Command.WRITE_MEM):
                self._payload_or_drain(m, s, (s.length != 0) & (s.length <= hostlink.MAX_BLOCK))
            with m.Else():
                m.next = "CRC"
        with m.State("PAYLOAD"):
            self._timeout(m, s)
            m.d.comb += [wr.addr.eq(s.count), wr.data.eq(rx.payload), wr.en.eq(rx.valid)]
            with m.If(rx.valid):
                m.d.sync += [s.crc.eq(crc8_next(s.crc, rx.payload)), s.count.eq(s.count + 1),
                             s.word.word_select(s.count[:2], 8).eq(rx.payload)]
                with m.If(s.count == s.length - 1):
                    m.next = "CRC"
        with m.State("CRC"):
            self._timeout(m, s)
            with m.If(rx.valid):
                with m.If(rx.payload == s.crc):
                    m.next = "CHECK"
                with m.Else():
                    self._reply(m, s, Status.BAD_CRC)
        with m.State("DRAIN"):
            m.d.sync += s.timer.eq(Mux(rx.valid, 0, s.timer + 1))
            with m.If(s.timer == self.timeout):
                m.next = "REPLY_SYNC"

    def _payload_or_drain(self, m, s, length_ok) -> None:
        with m.If(length_ok):
            m.next = "PAYLOAD"
        with m.Else():
            m.d.sync += s.status.eq(Status.BAD_LENGTH)
            m.next = "DRAIN"

    def _timeout(self, m, s) -> None:
        m.d.sync += s.timer.eq(Mux(self.rx.valid, 0, s.timer + 1))
        with m.If(~self.rx.valid & (s.timer == self.timeout)):
            self._reply(m, s, Status.TIMEOUT)

    def _reply(self, m, s, status) -> None:
        m.d.sync += s.status.eq(status)
        m.next = "REPLY_SYNC"

    # --- executing it --------------------------------------------------------------------
    def _execute(self, m, s, rd) -> None:
        reg_ok = (s.addr[:2] == 0) & (s.addr >> self.reg_addr_width == 0)
        mem_ok = s.addr + s.length <= self.mem_bytes
        block_ok = (s.length != 0) & (s.length <= hostlink.MAX_BLOCK)
        with m.State("CHECK"):
            m.d.sync += s.count.eq(0)
            with m.Switch(s.cmd):
                with m.Case(Command.PING):
                    self._check(m, s, s.length == 0, Const(1), "REPLY_SYNC")
                with m.Case(Command.READ_REG):
                    self._check(m, s, s.length == hostlink.REGISTER_BYTES, reg_ok, "REG_READ")
                with m.Case(Command.WRITE_REG):
                    self._check(m, s, Const(1), reg_ok, "REG_WRITE")
                with m.Case(Command.READ_MEM):
                    self._check(m, s, block_ok, mem_ok, "REPLY_SYNC")
                with m.Case(Command.WRITE_MEM):
                    self._check(m, s, Const(1), mem_ok, "MEM_FETCH")
                with m.Default():
                    self._reply(m, s, Status.BAD_COMMAND)
        self._registers(m, s)
        mem = self.mem
        with m.State("MEM_FETCH"):          # the buffer's read port answers one cycle later
            m.next = "MEM_WRITE"
        with m.State("MEM_WRITE"):
            m.d.comb += [mem.valid.eq(1), mem.write.eq(1), mem.addr.eq(s.addr + s.count),
                         mem.wdata.eq(rd.data)]
            with m.If(mem.ack):
                m.d.sync += s.count.eq(s.count + 1)
                with m.If(s.count == s.length - 1):
                    m.next = "REPLY_SYNC"
                with m.Else():
                    m.next = "MEM_FETCH"

    def _check(self, m, s, length_ok, addr_ok, then: str) -> None:
        with m.If(~length_ok):
            self._reply(m, s, Status.BAD_LENGTH)
        with m.Elif(~addr_ok):
            self._reply(m, s, Status.BAD_ADDRESS)
        with m.Else():
            m.d.sync += s.status.eq(Status.OK)
            m.next = then

    def _registers(self, m, s) -> None:
        bus = self.regs
        m.d.comb += [bus.araddr.eq(s.addr), bus.awaddr.eq(s.addr), bus.wdata.eq(s.word),
                     bus.wstrb.eq(0b1111)]
        with m.State("REG_READ"):
            m.d.comb += bus.arvalid.eq(1)
            with m.If(bus.arready):
                m.next = "REG_READ_DATA"
        with m.State("REG_READ_DATA"):
            m.d.comb += bus.rready.eq(1)
            with m.If(bus.rvalid):
                m.d.sync += [s.word.eq(bus.rdata), s.status.eq(Mux(bus.rresp == Resp.OKAY, Status.OK,
                                                                   Status.BUS_ERROR))]
                m.next = "REPLY_SYNC"
        with m.State("REG_WRITE"):
            m.d.comb += [bus.awvalid.eq(~s.aw_done), bus.wvalid.eq(~s.w_done)]
            aw = s.aw_done | bus.awready
            w = s.w_done | bus.wready
            m.d.sync += [s.aw_done.eq(aw), s.w_done.eq(w)]
            with m.If(aw & w):
                m.next = "REG_WRITE_RESP"
        with m.State("REG_WRITE_RESP"):
            m.d.comb += bus.bready.eq(1)
            m.d.sync += [s.aw_done.eq(0), s.w_done.eq(0)]
            with m.If(bus.bvalid):
                m.d.sync += s.status.eq(Mux(bus.bresp == Resp.OKAY, Status.OK, Status.BUS_ERROR))
                m.next = "REPLY_SYNC"

    # --- answering it --------------------------------------------------------------------
    def _answer(self, m, s) -> None:
        tx, mem = self.tx, self.mem
        ok = s.status == Status.OK
        payload_len = Mux(~ok, 0, Mux(s.cmd == Command.PING, 1,
                                      Mux(s.cmd == Command.READ_REG, hostlink.REGISTER_BYTES,
                                          Mux(s.cmd == Command.READ_MEM, s.length, 0))))
        from_mem = s.cmd == Command.READ_MEM
        with m.State("REPLY_SYNC"):                 # the sync byte is outside the CRC
            m.d.comb += [tx.valid.eq(1), tx.payload.eq(hostlink.SYNC_REPLY)]
            m.d.sync += [s.reply_len.eq(payload_len), s.count.eq(0), s.crc.eq(0)]
            with m.If(tx.ready):
                m.next = "REPLY_STATUS"
        for state, byte, then in (("REPLY_STATUS", s.status, "REPLY_LEN0"),
                                  ("REPLY_LEN0", s.reply_len[:8], "REPLY_LEN1")):
            with m.State(state):
                self._send(m, s, byte)
                with m.If(tx.ready):
                    m.next = then
        with m.State("REPLY_LEN1"):
            self._send(m, s, s.reply_len[8:])
            with m.If(tx.ready):
                with m.If(s.reply_len == 0):
                    m.next = "REPLY_CRC"
                with m.Elif(from_mem):
                    m.next = "REPLY_MEM_READ"
                with m.Else():
                    m.next = "REPLY_PAYLOAD"
        with m.State("REPLY_PAYLOAD"):
            self._send(m, s, Mux(s.cmd == Command.PING, hostlink.VERSION, s.word.word_select(s.count[:2], 8)))
            self._next_payload_byte(m, s, "REPLY_PAYLOAD")
        with m.State("REPLY_MEM_READ"):
            m.d.comb += [mem.valid.eq(1), mem.addr.eq(s.addr + s.count)]
            with m.If(mem.ack):
                m.d.sync += s.byte.eq(mem.rdata)
                m.next = "REPLY_MEM_SEND"
        with m.State("REPLY_MEM_SEND"):
            self._send(m, s, s.byte)
            self._next_payload_byte(m, s, "REPLY_MEM_READ")
        with m.State("REPLY_CRC"):
            m.d.comb += [tx.valid.eq(1), tx.payload.eq(s.crc)]
            with m.If(tx.ready):
                m.next = "IDLE"

    def _send(self, m, s, byte) -> None:
        """Offer ``byte``; the CRC takes it when the transmitter does."""
        m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(byte)]
        with m.If(self.tx.ready):
            m.d.sync += s.crc.eq(crc8_next(s.crc, byte))

    def _next_payload_byte(self, m, s, again: str) -> None:
        with m.If(self.tx.ready):
            m.d.sync += s.count.eq(s.count + 1)
            with m.If(s.count == s.reply_len - 1):
                m.next = "REPLY_CRC"
            with m.Else():
                m.next = again


class _State:
    """The bridge's registers."""

    def __init__(self, bridge: HostBridge):
        self.cmd, self.addr, self.length = Signal(8), Signal(32), Signal(16)
        self.crc, self.byte, self.word = Signal(8), Signal(8), Signal(32)
        self.count, self.reply_len = Signal(16), Signal(16)
        self.status = Signal(range(len(Status)))
        self.timer = Signal(range(bridge.timeout + 1))
        self.aw_done, self.w_done = Signal(), Signal()
