"""The board's SDRAM behind two AXI4 slave ports: a generated LiteDRAM controller
(`bitmill.hw.litedram`) and `SdramInit`, which runs its initialisation over the controller's
Wishbone control bus (there is no CPU on the board to do it).

`SdramMemory` in the ``board`` flavour drives the platform's ``sdram`` resource (amaranth-boards
names); the chip's clock pin carries ``ClockSignal("sdram_ps")``, the chip's clock (the system
clock or, when the controller runs the chip at twice it, ``ClockSignal("sdram_2x")``, which
clocks the controller's I/O registers) shifted by half a period, which the board top makes with
its PLL (commands and data change on the registers' rising edge and the chip samples them half
a period later).
"""

from __future__ import annotations

from amaranth import Array, ClockSignal, Const, Instance, Module, ResetSignal, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from bitmill.hw.axi import AxiSignature
from bitmill.hw.litedram import MODULE, PORTS, InitOp, LiteDramCore

WB_ADDR_BITS = 30             # word address of the 32-bit control bus


class WishboneSignature(wiring.Signature):
    """A classic Wishbone master with 32-bit data and word addresses (LiteX's names)."""

    def __init__(self):
        super().__init__({"adr": Out(WB_ADDR_BITS), "dat_w": Out(32), "dat_r": In(32), "sel": Out(4),
                          "cyc": Out(1), "stb": Out(1), "we": Out(1), "ack": In(1), "err": In(1)})


class SdramInit(wiring.Component):
    """Runs ``ops`` in order after reset: a write holds ``cyc``/``stb`` until ``ack``, a wait
    counts its cycles. Members: ``wb`` (Out `WishboneSignature`), ``done`` (Out 1)."""

    def __init__(self, ops: tuple[InitOp, ...]):
        if not ops or not all(isinstance(op, InitOp) for op in ops):
            raise ValueError("ops must be a non-empty tuple of InitOp")
        if any(op.addr is not None and op.addr % 4 for op in ops):
            raise ValueError("control-bus addresses must be multiples of 4")
        self.ops = tuple(ops)
        super().__init__({"wb": Out(WishboneSignature()), "done": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        ops, wb = self.ops, self.wb
        longest = max([op.value for op in ops if op.addr is None] + [1])
        index = Signal(range(len(ops) + 1))
        wait = Signal(range(longest + 1))
        is_wait = Array(Const(op.addr is None) for op in ops)[index]
        addr = Array(Const((op.addr or 0) >> 2, WB_ADDR_BITS) for op in ops)[index]
        value = Array(Const(op.value, 32) for op in ops)[index]
        m.d.comb += self.done.eq(index == len(ops))
        with m.FSM():
            with m.State("STEP"):
                with m.If(~self.done):
                    with m.If(is_wait):
                        m.d.sync += wait.eq(value)
                        m.next = "WAIT"
                    with m.Else():
                        m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += [wb.adr.eq(addr), wb.dat_w.eq(value), wb.sel.eq(0xF), wb.cyc.eq(1),
                             wb.stb.eq(1), wb.we.eq(1)]
                with m.If(wb.ack | wb.err):
                    m.d.sync += index.eq(index + 1)
                    m.next = "STEP"
            with m.State("WAIT"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait <= 1):
                    m.d.sync += index.eq(index + 1)
                    m.next = "STEP"
        return m


class SdramMemory(wiring.Component):
    """Members: ``axi`` and ``host`` (In `AxiSignature` of the core's ``data_bytes``; the low
    ``addr_width`` address bits reach the controller), ``ready`` (Out 1: initialised, no
    error)."""

    def __init__(self, core: LiteDramCore):
        if not isinstance(core, LiteDramCore):
            raise TypeError(f"core must be a LiteDramCore, not {type(core).__name__}")
        self.core = core
        port = In(AxiSignature(32, core.data_bytes, 1))
        super().__init__({name: port for name in PORTS} | {"ready": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        core = self.core
        m.submodules.init = init = SdramInit(core.init_ops)
        init_done, init_error = Signal(), Signal()
        ports = {"i_clk": ClockSignal(), "o_init_done": init_done, "o_init_error": init_error}
        for name in ("adr", "dat_w", "sel", "cyc", "stb", "we"):
            ports[f"i_wb_ctrl_{name}"] = getattr(init.wb, name)
        ports |= {"i_wb_ctrl_bte": 0, "i_wb_ctrl_cti": 0, "o_wb_ctrl_dat_r": init.wb.dat_r,
                  "o_wb_ctrl_ack": init.wb.ack, "o_wb_ctrl_err": init.wb.err,
                  "o_user_clk": Signal(), "o_user_rst": Signal()}
        for name in PORTS:
            ports |= _user_port(name, getattr(self, name), core.addr_width)
        if core.flavour == "sim":
            ports["i_sim_trace"] = 0
        else:
            ports["i_rst"] = ResetSignal()
            if core.clock_ratio == 2:
                ports["i_clk2x"] = ClockSignal("sdram_2x")
            pins = platform.request("sdram", 0, dir="-")
            m.submodules.sdram_clk = clk = io.Buffer("o", pins.clk)
            m.d.comb += clk.o.eq(ClockSignal("sdram_ps"))
            ports |= {"o_sdram_a": pins.a.io, "o_sdram_ba": pins.ba.io, "o_sdram_cas_n": pins.cas.io,
                      "o_sdram_ras_n": pins.ras.io, "o_sdram_we_n": pins.we.io, "o_sdram_cs_n": pins.cs.io,
                      "o_sdram_cke": pins.clk_en.io, "o_sdram_dm": pins.dqm.io, "io_sdram_dq": pins.dq.io}
        m.submodules.controller = Instance(MODULE, **ports)
        m.d.comb += self.ready.eq(init.done & init_done & ~init_error)
        return m


def _user_port(name: str, bus, addr_width: int) -> dict:
    """The Instance ports of user port ``name`` on the slave side of ``bus``."""
    p = f"user_port_{name}_"
    ports = {}
    for ch in ("aw", "ar"):
        ports |= {f"i_{p}{ch}addr": getattr(bus, f"{ch}addr")[:addr_width],
                  f"i_{p}{ch}burst": getattr(bus, f"{ch}burst"), f"i_{p}{ch}id": getattr(bus, f"{ch}id"),
                  f"i_{p}{ch}len": getattr(bus, f"{ch}len"), f"i_{p}{ch}size": getattr(bus, f"{ch}size"),
                  f"i_{p}{ch}valid": getattr(bus, f"{ch}valid"), f"o_{p}{ch}ready": getattr(bus, f"{ch}ready")}
    ports |= {f"i_{p}wdata": bus.wdata, f"i_{p}wstrb": bus.wstrb, f"i_{p}wlast": bus.wlast,
              f"i_{p}wvalid": bus.wvalid, f"o_{p}wready": bus.wready,
              f"o_{p}bid": bus.bid, f"o_{p}bresp": bus.bresp, f"o_{p}bvalid": bus.bvalid, f"i_{p}bready": bus.bready,
              f"o_{p}rdata": bus.rdata, f"o_{p}rid": bus.rid, f"o_{p}rlast": bus.rlast,
              f"o_{p}rresp": bus.rresp, f"o_{p}rvalid": bus.rvalid, f"i_{p}rready": bus.rready}
    return ports
