"""`Accelerator`: the whole accelerator. It runs `bitmill compile` programs from DRAM.

Ports: ``host`` (AXI4-Lite slave: the registers of `bitmill.hw.regmap`), ``mem`` (AXI4 master,
``8 * mem_bytes_per_cycle`` data bits: the program preload and LOAD read it, STORE writes it),
``irq`` (DONE), ``running`` (a program runs: from the cycle after START to the end), ``error``
(an error flag is set), and ``trace`` (per queue: the cycle an instruction starts, with its program
index, and the cycle it finishes; for co-simulation checks, unused on a board).

Inside: `HostRegisters`, `Control` (preload, queues, tokens, errors), `LoadDma` and `StoreDma`,
`Buffers`, the `GemmUnit` and the `VectorUnit`. The read channel belongs to the preload until
the queues start, then to LOAD.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bitmill.config import AccelConfig
from bitmill.hw.axi import BURST_INCR, AxiSignature
from bitmill.hw.axi_lite import AxiLiteSignature
from bitmill.hw.buffers import Buffers, slot_words
from bitmill.hw.control import INDEX_BITS, Control
from bitmill.hw.dma import LoadDma, StoreDma
from bitmill.hw.gemm import GemmUnit
from bitmill.hw.host_regs import ADDR_WIDTH, HostRegisters
from bitmill.hw.regmap import DATA_BITS
from bitmill.hw.vector import VectorUnit
from bitmill.isa import Buffer, Queue, slot_bytes


def trace_signature() -> wiring.Signature:
    """Per queue: ``start`` (an instruction starts), ``index`` (its program index),
    ``finish`` (an instruction finishes)."""
    n = len(Queue)
    return wiring.Signature({"start": Out(n), "index": Out(data.ArrayLayout(INDEX_BITS, n)),
                             "finish": Out(n)})


class Accelerator(wiring.Component):
    """The accelerator of ``cfg`` (see the module docstring)."""

    def __init__(self, cfg: AccelConfig):
        if not isinstance(cfg, AccelConfig):
            raise TypeError(f"cfg must be an AccelConfig, not {type(cfg).__name__}")
        self.cfg = cfg
        super().__init__({"host": In(AxiLiteSignature(ADDR_WIDTH, DATA_BITS)),
                          "mem": Out(AxiSignature(32, cfg.mem_bytes_per_cycle, 1)),
                          "irq": Out(1), "running": Out(1), "error": Out(1),
                          "trace": Out(trace_signature())})

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        m.submodules.regs = regs = HostRegisters(cfg)
        m.submodules.control = ctl = Control(cfg)
        # the control refuses LOADs and STOREs outside memory or their slot before they start
        # (checks made at preload): the engines need not check again
        m.submodules.load = load = LoadDma(cfg, checked=False)
        m.submodules.store = store = StoreDma(cfg, checked=False)
        m.submodules.buffers = bufs = Buffers(cfg)
        m.submodules.gemm = gemm = GemmUnit(cfg)
        m.submodules.vector = vec = VectorUnit(cfg)
        wiring.connect(m, wiring.flipped(self.host), regs.host)
        self._host(m, regs, ctl)
        self._memory_port(m, ctl, load, store)
        self._transfers(m, ctl, regs, load, store, bufs)
        self._compute(m, ctl, gemm, vec, bufs)
        m.d.comb += [self.trace.start.eq(ctl.trace_start), self.trace.finish.eq(ctl.trace_finish),
                     self.trace.index.eq(ctl.trace_index), self.irq.eq(ctl.done),
                     self.running.eq(ctl.busy), self.error.eq(ctl.error_flags != 0)]
        return m

    @staticmethod
    def _host(m: Module, regs, ctl) -> None:
        m.d.comb += [ctl.start.eq(regs.start), ctl.clear.eq(regs.clear),
                     ctl.prog_addr.eq(regs.prog_addr), ctl.prog_count.eq(regs.prog_count),
                     ctl.mem_bytes.eq(regs.mem_bytes),
                     regs.busy.eq(ctl.busy), regs.done.eq(ctl.done),
                     regs.error_flags.eq(ctl.error_flags), regs.error_instr.eq(ctl.error_instr),
                     regs.cycles.eq(ctl.cycles), regs.retired.eq(ctl.retired),
                     regs.load_busy.eq(ctl.queue_busy[Queue.LOAD.value]),
                     regs.compute_busy.eq(ctl.queue_busy[Queue.COMPUTE.value]),
                     regs.store_busy.eq(ctl.queue_busy[Queue.STORE.value])]

    def _memory_port(self, m: Module, ctl, load, store) -> None:
        """AR/R: the preload's until the queues start, then LOAD's; AW/W/B: STORE's."""
        mem, f, lm = self.mem, ctl.fetch, load.mem
        b = self.cfg.mem_bytes_per_cycle
        fetching = ctl.fetching
        for name in ("awid", "awaddr", "awlen", "awsize", "awburst", "awvalid", "wdata", "wstrb",
                     "wlast", "wvalid", "bready"):
            m.d.comb += getattr(mem, name).eq(getattr(store.mem, name))
        for name in ("awready", "wready", "bid", "bresp", "bvalid"):
            m.d.comb += getattr(store.mem, name).eq(getattr(mem, name))
        m.d.comb += [mem.arid.eq(Mux(fetching, 0, lm.arid)),
                     mem.araddr.eq(Mux(fetching, f.araddr, lm.araddr)),
                     mem.arlen.eq(Mux(fetching, f.arlen, lm.arlen)),
                     mem.arsize.eq(Mux(fetching, (b - 1).bit_length(), lm.arsize)),
                     mem.arburst.eq(Mux(fetching, BURST_INCR, lm.arburst)),
                     mem.arvalid.eq(Mux(fetching, f.arvalid, lm.arvalid)),
                     mem.rready.eq(Mux(fetching, f.rready, lm.rready)),
                     f.arready.eq(fetching & mem.arready), lm.arready.eq(~fetching & mem.arready),
                     f.rvalid.eq(fetching & mem.rvalid), lm.rvalid.eq(~fetching & mem.rvalid),
                     f.rdata.eq(mem.rdata), lm.rdata.eq(mem.rdata), f.rresp.eq(mem.rresp),
                     lm.rresp.eq(mem.rresp), f.rlast.eq(mem.rlast), lm.rlast.eq(mem.rlast),
                     lm.rid.eq(mem.rid)]

    def _transfers(self, m: Module, ctl, regs, load, store, bufs) -> None:
        """LOAD and STORE: their DMA commands from the instruction, the slot's first word and
        size; the LOAD's target buffer held for its writes."""
        cfg = self.cfg
        ins = ctl.load.instr
        base, size = Signal.like(load.cmd.base), Signal.like(load.cmd.slot_bytes)
        with m.Switch(ins.buffer):
            for buf in Buffer:
                with m.Case(buf):
                    m.d.comb += [base.eq(ins.slot * slot_words(cfg, buf, cfg.mem_bytes_per_cycle)),
                                 size.eq(slot_bytes(cfg, buf))]
        m.d.comb += [load.start.eq(ctl.load.start), load.cmd.dram_addr.eq(ins.dram_addr),
                     load.cmd.nbytes.eq(ins.nbytes), load.cmd.offset.eq(ins.offset),
                     load.cmd.base.eq(base), load.cmd.slot_bytes.eq(size),
                     load.cmd.limit.eq(regs.mem_bytes),
                     ctl.load.busy.eq(load.busy), ctl.load.finish.eq(load.finish),
                     ctl.load.error.eq(load.error)]
        target = Signal(Buffer)
        with m.If(ctl.load.start):
            m.d.sync += target.eq(ins.buffer)
        wiring.connect(m, load.write, bufs.load)
        m.d.comb += bufs.load_target.eq(target)
        st = ctl.store.instr
        m.d.comb += [store.start.eq(ctl.store.start), store.cmd.dram_addr.eq(st.dram_addr),
                     store.cmd.nbytes.eq(st.nbytes),
                     store.cmd.base.eq(st.slot * slot_words(cfg, Buffer.OUT)),
                     store.cmd.limit.eq(regs.mem_bytes),
                     bufs.store_read.addr.eq(store.read_addr), store.read_data.eq(bufs.store_read.data),
                     ctl.store.busy.eq(store.busy), ctl.store.finish.eq(store.finish),
                     ctl.store.error.eq(store.error)]

    @staticmethod
    def _compute(m: Module, ctl, gemm, vec, bufs) -> None:
        """GEMM and VEC on the layer registers; the buffers' compute ports go to the unit that
        runs (one at a time: the compute queue is in order)."""
        for unit, port in ((gemm, ctl.gemm), (vec, ctl.vec)):
            m.d.comb += [unit.start.eq(port.start), unit.instr.eq(port.instr), unit.regs.eq(ctl.regs),
                         port.busy.eq(unit.busy), port.finish.eq(unit.finish), port.error.eq(unit.error)]
        vec_on = vec.busy                   # a VEC reads from the cycle after its start
        # the vector unit reads beat-wide words: the beat's lane of a wider activation word
        vec_addr, vec_data = vec.act_addr, bufs.acts.data
        lanes = (len(bufs.acts.data) // len(vec.act_data) - 1).bit_length()
        if lanes:
            lane = Signal(lanes, name="vec_act_lane")
            m.d.sync += lane.eq(vec.act_addr[:lanes])
            vec_addr, vec_data = vec.act_addr >> lanes, bufs.acts.data.word_select(lane, len(vec.act_data))
        m.d.comb += [bufs.weights.addr.eq(gemm.weights.addr), gemm.weights.data.eq(bufs.weights.data),
                     bufs.acts.addr.eq(Mux(vec_on, vec_addr, gemm.acts.addr)),
                     gemm.acts.data.eq(bufs.acts.data), vec.act_data.eq(vec_data),
                     bufs.params.addr.eq(Mux(vec_on, vec.param_addr, gemm.params.addr)),
                     gemm.params.data.eq(bufs.params.data), vec.param_data.eq(bufs.params.data),
                     bufs.out_read.addr.eq(Mux(vec_on, vec.out_read_addr, gemm.out_read.addr)),
                     gemm.out_read.data.eq(bufs.out_read.data), vec.out_read_data.eq(bufs.out_read.data),
                     bufs.out_write.valid.eq(gemm.out_write.valid | vec.out_write.valid),
                     bufs.out_write.payload.eq(Mux(vec.out_write.valid, vec.out_write.payload,
                                                   gemm.out_write.payload))]
