"""The accelerator's host port: an AXI4-Lite slave over the register map of
`bitmill.hw.regmap`.

AXI4-Lite behaviour: AW and W are accepted in any order or in the same cycle; one write and
one read are outstanding at a time (``awready``/``wready`` low while the address or data of
the pending write is held or its B response waits, ``arready`` low while an R response waits);
B and R are held until ``bready``/``rready``. Ready never depends on valid. The low two
address bits are ignored (registers are decoded by word); ``wstrb`` selects the bytes
written, on RW registers and on CTRL (a strobe bit is taken from the byte lane it lies in).
Writes to RO or unmapped offsets answer SLVERR and change nothing; reads of WO or unmapped
offsets answer SLVERR with data 0. AWPROT/ARPROT are ignored.

Timing: the write takes effect (register updated, ``start``/``clear`` pulse) in the cycle
after the later of the AW and W handshakes, the cycle in which ``bvalid`` rises
(`WRITE_LATENCY`). A read samples the register in the cycle of the AR handshake; ``rvalid``
rises in the next cycle (`READ_LATENCY`).
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill.config import AccelConfig
from bitmill.hw.axi_lite import AxiLiteSignature, Resp
from bitmill.hw.regmap import (DATA_BITS, ERROR_FLAG_BITS, ID_VALUE, REGISTERS,
                               Register, register, shape_value)

ADDR_WIDTH = 8            # byte address bits of the host port (offsets 0x00..0xFC)
WRITE_LATENCY = 1         # cycles from the later of the AW/W handshakes to bvalid
READ_LATENCY = 1          # cycles from the AR handshake to rvalid
RW_PORTS = {"PROG_ADDR": "prog_addr", "PROG_COUNT": "prog_count", "MEM_BYTES": "mem_bytes"}


class HostRegisters(wiring.Component):
    """AXI4-Lite slave of the register map. Towards the accelerator: ``start`` (one-cycle
    pulse on a write of CTRL.START while ``busy`` is low; the control block must raise
    ``busy`` from the cycle after ``start``), ``clear`` (one-cycle pulse on a write of
    CTRL.CLEAR), the RW registers ``prog_addr``, ``prog_count``, ``mem_bytes`` (reset 0);
    from it the status, error and counter values the RO registers show."""

    def __init__(self, cfg: AccelConfig):
        if not isinstance(cfg, AccelConfig):
            raise ValueError(f"cfg must be an AccelConfig, not {cfg!r}")
        self.cfg = cfg
        self.shape_word = shape_value(cfg)
        super().__init__({
            "host": In(AxiLiteSignature(ADDR_WIDTH, DATA_BITS)),
            "start": Out(1), "clear": Out(1),
            "prog_addr": Out(32), "prog_count": Out(32), "mem_bytes": Out(32),
            "busy": In(1), "done": In(1), "error_flags": In(ERROR_FLAG_BITS),
            "error_instr": In(32), "cycles": In(64),
            "load_busy": In(32), "compute_busy": In(32), "store_busy": In(32),
            "retired": In(32),
        })

    @property
    def write_latency(self) -> int:
        """Cycles from the later of the AW and W handshakes to ``bvalid`` (and to the
        register update and ``start``/``clear`` pulse)."""
        return WRITE_LATENCY

    @property
    def read_latency(self) -> int:
        """Cycles from the AR handshake to ``rvalid``."""
        return READ_LATENCY

    def read_values(self) -> dict[str, object]:
        """The value each readable register shows, by register name."""
        status = register("STATUS")
        status_bits = {"BUSY": self.busy, "DONE": self.done, "ERROR": self.error_flags.any()}
        status_word = 0
        for f in status.fields:
            status_word = status_word | (status_bits[f.name].as_unsigned() << f.lsb)
        values = {"ID": Const(ID_VALUE, 32), "SHAPE": Const(self.shape_word, 32),
                  "STATUS": status_word, "ERROR": self.error_flags,
                  "ERROR_INSTR": self.error_instr,
                  "CYCLES_LO": self.cycles[:32], "CYCLES_HI": self.cycles[32:],
                  "LOAD_BUSY": self.load_busy, "COMPUTE_BUSY": self.compute_busy,
                  "STORE_BUSY": self.store_busy, "RETIRED": self.retired}
        values.update({name: getattr(self, port) for name, port in RW_PORTS.items()})
        readable = {r.name for r in REGISTERS if r.access.readable}
        assert set(values) == readable, set(values) ^ readable
        return values

    def elaborate(self, platform):
        m = Module()
        self._write_channel(m)
        self._read_channel(m)
        return m

    def _write_channel(self, m: Module) -> None:
        host = self.host
        aw_full, aw_addr = Signal(), Signal(ADDR_WIDTH)
        w_full, w_data, w_strb = Signal(), Signal(DATA_BITS), Signal(DATA_BITS // 8)
        bvalid, bresp = Signal(), Signal(Resp)
        m.d.comb += [host.awready.eq(~aw_full & ~bvalid), host.wready.eq(~w_full & ~bvalid),
                     host.bvalid.eq(bvalid), host.bresp.eq(bresp)]
        aw_take = host.awvalid & host.awready
        w_take = host.wvalid & host.wready
        fire = (aw_full | aw_take) & (w_full | w_take)
        m.d.sync += [self.start.eq(0), self.clear.eq(0)]
        with m.If(bvalid & host.bready):
            m.d.sync += bvalid.eq(0)
        with m.If(fire):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), bvalid.eq(1)]
            self._write_register(m, Mux(aw_full, aw_addr, host.awaddr),
                                 Mux(w_full, w_data, host.wdata),
                                 Mux(w_full, w_strb, host.wstrb), bresp)
        with m.Else():
            with m.If(aw_take):
                m.d.sync += [aw_full.eq(1), aw_addr.eq(host.awaddr)]
            with m.If(w_take):
                m.d.sync += [w_full.eq(1), w_data.eq(host.wdata), w_strb.eq(host.wstrb)]

    def _write_register(self, m: Module, addr, data, strb, bresp) -> None:
        with m.Switch(addr[2:]):
            for reg in REGISTERS:
                if not reg.access.writable:
                    continue
                with m.Case(reg.offset >> 2):
                    m.d.sync += bresp.eq(Resp.OKAY)
                    if reg.name == "CTRL":
                        self._write_ctrl(m, reg, data, strb)
                    else:
                        target = getattr(self, RW_PORTS[reg.name])
                        for i in range(DATA_BITS // 8):
                            with m.If(strb[i]):
                                m.d.sync += target[8 * i:8 * i + 8].eq(data[8 * i:8 * i + 8])
            with m.Default():
                m.d.sync += bresp.eq(Resp.SLVERR)

    def _write_ctrl(self, m: Module, reg: Register, data, strb) -> None:
        def written(name):
            f = reg.field(name)
            return strb[f.lsb // 8] & data[f.lsb]
        m.d.sync += [self.start.eq(written("START") & ~self.busy),
                     self.clear.eq(written("CLEAR"))]

    def _read_channel(self, m: Module) -> None:
        host = self.host
        rvalid, rdata, rresp = Signal(), Signal(DATA_BITS), Signal(Resp)
        m.d.comb += [host.arready.eq(~rvalid), host.rvalid.eq(rvalid),
                     host.rdata.eq(rdata), host.rresp.eq(rresp)]
        values = self.read_values()
        with m.If(host.arvalid & host.arready):
            m.d.sync += rvalid.eq(1)
            with m.Switch(host.araddr[2:]):
                for reg in REGISTERS:
                    if reg.access.readable:
                        with m.Case(reg.offset >> 2):
                            m.d.sync += [rdata.eq(values[reg.name]), rresp.eq(Resp.OKAY)]
                with m.Default():
                    m.d.sync += [rdata.eq(0), rresp.eq(Resp.SLVERR)]
        with m.Elif(rvalid & host.rready):
            m.d.sync += rvalid.eq(0)
