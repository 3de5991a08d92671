"""`VectorUnit`: the VEC instruction (`bitmill.isa.Vec`: ADD, MAXPOOL, AVGPOOL) under the
layer registers of the last SETUP, bit for bit as `bitmill.sim.functional`.

The instruction goes to one of two engines, each driving the activation and requant-table
read ports while it runs: `bitmill.hw.vector_add.AddEngine` (ADD) or
`bitmill.hw.vector_pool.PoolEngine` (MAXPOOL, AVGPOOL, and an unknown kind, which it refuses).
Each hands over one result per output element (`bitmill.hw.vector_common.result_layout`).
The output stage requantizes ADD and AVGPOOL results (`bitmill.hw.requant.Requantizer`:
``out_bits``, ``out_signed``, ``relu``); MAXPOOL results go straight on, their low
``out_bits`` bits becoming the code (as `bitmill.packing.pack_rows` stores the values). The
codes go in order to the `bitmill.hw.packer.CodePacker`, packed NHWC from byte 0 of the
output slot ``o_slot`` (rows of ``out_w*out_c`` codes padded to whole bytes), one code in a
cycle at most and never faster than the packer takes them, so it never holds one back.

Timing (`bitmill.timing.vec_unit_cycles`, a function of the fields and the config only):
the last result enters the packer, and ``finish`` comes `bitmill.timing.vec_drain_cycles`
cycles later (`bitmill.timing.PACKER_DRAIN` for ``B >= 4``), in the cycle of the packer's
last write at the latest. ``error`` comes with ``finish``:
an engine's error (see the engines), a code that would fall outside the output slot (not
written), or a requant shift above `bitmill.numerics.MAX_SHIFT`.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill import isa
from bitmill.config import AccelConfig
from bitmill.hw.axi import buffer_write_signature
from bitmill.hw.packer import CodePacker
from bitmill.hw.pe import copy_register
from bitmill.hw.requant import Requantizer
from bitmill.hw.vector_add import AddEngine
from bitmill.hw.vector_common import VecGeometry, result_layout
from bitmill.hw.vector_pool import PoolEngine
from bitmill.isa import VecKind
from bitmill.numerics import MAX_BITS, MAX_SHIFT
from bitmill.timing import vec_drain_cycles

TAG_BITS = 3            # write, row_end, last: travel beside the value through the requantizer


class VectorUnit(wiring.Component):
    """Members: ``start`` (one-cycle pulse), ``instr`` (the VEC body of
    `bitmill.isa.layout`, sampled with ``start``), ``regs`` (the SETUP body, stable while the
    instruction runs) In; ``busy``, ``finish``, ``error`` Out; read ports ``act_addr`` /
    ``act_data`` and ``param_addr`` / ``param_data``; the output buffer's read port
    ``out_read_addr`` / ``out_read_data`` and write requests ``out_write``
    (`bitmill.hw.axi.buffer_write_signature`)."""

    def __init__(self, cfg: AccelConfig):
        self.geo = geo = VecGeometry(cfg)
        self.cfg = cfg
        body = isa.layout(cfg)["body"].shape
        w = geo.word_bits
        super().__init__({
            "start": In(1), "instr": In(body["vec"].shape), "regs": In(body["setup"].shape),
            "busy": Out(1), "finish": Out(1), "error": Out(1),
            "act_addr": Out(range(geo.act_depth)), "act_data": In(w),
            "param_addr": Out(range(geo.param_depth)), "param_data": In(w),
            "out_read_addr": Out(range(geo.out_depth)), "out_read_data": In(w),
            "out_write": Out(buffer_write_signature(geo.data_bytes, geo.out_depth)),
        })
        self.stalled = Signal()     # the packer held a code back (never, by the code order)
        self.starved = Signal()     # an ADD element issued before its operand words (never)

    def drain_latency(self, out_bits: int) -> int:
        """Cycles from the last code entering the packer to ``finish``
        (`bitmill.timing.vec_drain_cycles`)."""
        return vec_drain_cycles(self.cfg, out_bits)

    def elaborate(self, platform) -> Module:
        m = Module()
        geo = self.geo
        m.submodules.add = add = AddEngine(self.cfg)
        m.submodules.pool = pool = PoolEngine(self.cfg)
        m.submodules.requant = rq = Requantizer(geo.acc_bits, TAG_BITS)
        m.submodules.packer = packer = CodePacker(geo.data_bytes, geo.out_depth)
        # the instruction and the per-instruction state are set while the unit is idle
        # (``busy`` off, a register; off in the start cycle, when ``instr`` is the instruction
        # that starts), not on ``start``: their enables stay off the start decision
        instr = Signal.like(self.instr, name="instr_q")
        with m.If(~self.busy):
            m.d.sync += instr.eq(self.instr)
        result = self._engines(m, add, pool, instr)
        code = self._requant(m, rq, result)
        last, refused = self._pack(m, packer, instr, code)
        self._finish(m, last, refused, add, pool, instr)
        return m

    def _engines(self, m: Module, add, pool, instr) -> Signal:
        """Start the engine of the kind; its read ports and its results."""
        is_add = self.instr.kind == VecKind.ADD
        for engine, mine in ((add, is_add), (pool, ~is_add)):
            m.d.comb += [engine.start.eq(self.start & mine), engine.instr.eq(self.instr),
                         engine.regs.eq(self.regs), engine.act_data.eq(self.act_data),
                         engine.param_data.eq(self.param_data)]
        # which engine's ports and results count: registers set beside ``instr`` (while idle),
        # one copy for the read addresses and the result's data, one for its flags, which
        # reach the output cursor's enable (no comparison of the kind, no net of ~170 loads)
        adding, adding_flags = (copy_register(1, n) for n in ("adding", "adding_flags"))
        with m.If(~self.busy):
            m.d.sync += [adding.eq(is_add), adding_flags.eq(is_add)]
        result = Signal(result_layout(self.geo.acc_bits), name="result")
        flags = ("valid", "write", "row_end", "last")
        m.d.comb += [self.act_addr.eq(Mux(adding, add.act_addr, pool.act_addr)),
                     self.param_addr.eq(Mux(adding, add.param_addr, pool.param_addr)),
                     result.eq(Mux(adding, add.result.as_value(), pool.result.as_value())),
                     *(getattr(result, f).eq(Mux(adding_flags, getattr(add.result, f),
                                                 getattr(pool.result, f))) for f in flags),
                     self.starved.eq(add.starved)]
        return result

    def _requant(self, m: Module, rq: Requantizer, result) -> dict:
        """ADD and AVGPOOL results through the requantizer, MAXPOOL results around it: the
        code of this cycle (``valid``, ``value``, ``write``, ``row_end``, ``last``) and
        whether a requant shift was out of range."""
        r = self.regs
        m.d.comb += [rq.valid.eq(result.valid & result.requant), rq.acc.eq(result.value),
                     rq.multiplier.eq(result.mult), rq.shift.eq(result.shift[:6]),
                     rq.bias.eq(result.bias), rq.out_bits.eq(r.out_bits),
                     rq.out_signed.eq(r.out_signed), rq.relu.eq(r.relu),
                     rq.tag.eq(Cat(result.write, result.row_end, result.last))]
        direct = result.valid & ~result.requant
        code = {"valid": rq.out_valid | direct,
                "value": Mux(rq.out_valid, rq.value, result.value),
                "write": Mux(rq.out_valid, rq.out_tag[0], result.write),
                "row_end": Mux(rq.out_valid, rq.out_tag[1], result.row_end),
                "last": Mux(rq.out_valid, rq.out_tag[2], result.last),
                "bad_shift": result.valid & result.requant & (result.shift > MAX_SHIFT)}
        return code

    def _pack(self, m: Module, packer: CodePacker, instr, code: dict) -> Signal:
        """The codes, in order, to the packer at the output cursor (the bit after the last
        code, rows padded to bytes); codes past the slot are not written. Returns whether the
        last code of the instruction is here, and whether a code was refused."""
        geo, r = self.geo, self.regs
        slot_bits = 8 * geo.out_slot_bytes
        cursor = Signal(range(slot_bits + 64), name="out_cursor")
        bits = r.out_bits + 1
        end = cursor + bits
        # whether a code of ``bits`` fits after the cursor, kept in a register beside it (the
        # layer registers hold from before ``start``), so no adder follows a code's arrival;
        # after a written code it is the cursor against one of two limits formed from the
        # layer registers: ``cursor + 2 bits <= S``, or after a row's end (the cursor rounded
        # up to a byte) ``cursor + bits <= 8 floor((S - bits) / 8)``
        fits = Signal(name="out_fits")
        limit, row_limit = (Signal(signed(len(cursor) + 2), name=n)
                            for n in ("out_fits_limit", "out_fits_row_limit"))
        m.d.sync += [limit.eq(slot_bits - 2 * bits),
                     row_limit.eq(Cat(Const(0, 3), (slot_bits - bits) >> 3).as_signed() - bits)]
        writing = code["valid"] & code["write"]
        m.d.comb += [packer.valid.eq(writing & fits),
                     packer.bit_addr.eq(instr.o_slot * slot_bits + cursor),
                     packer.value.eq(code["value"]), packer.bits.eq(r.out_bits),
                     packer.pad.eq(code["row_end"]),
                     self.stalled.eq(packer.valid & ~packer.ready)]
        with m.If(~self.busy):
            m.d.sync += [cursor.eq(0), fits.eq(bits <= slot_bits)]
        with m.Elif(writing & fits):
            m.d.sync += [cursor.eq(Mux(code["row_end"], Cat(Const(0, 3), (end + 7) >> 3), end)),
                         fits.eq(Mux(code["row_end"], cursor <= row_limit, cursor <= limit))]
        m.d.comb += [self.out_read_addr.eq(packer.read_addr), packer.read_data.eq(self.out_read_data),
                     self.out_write.valid.eq(packer.write.valid),
                     self.out_write.payload.eq(packer.write.payload)]
        return code["valid"] & code["last"], (writing & ~fits) | code["bad_shift"]

    def _finish(self, m: Module, last, refused, add, pool, instr) -> None:
        """``finish`` `bitmill.timing.vec_drain_cycles` after the last code; ``busy``;
        ``error``."""
        drains = [vec_drain_cycles(self.cfg, bits) for bits in range(1, MAX_BITS + 1)]
        left = Signal(range(max(drains) + 2), name="drain_left")
        with m.If(~self.busy):
            m.d.sync += left.eq(0)
        with m.Elif(last):
            m.d.sync += left.eq(Array(drains)[self.regs.out_bits])
        with m.Elif(left != 0):
            m.d.sync += left.eq(left - 1)
        # a refusal is registered before it sets ``failed`` (the packer's code path ends at a
        # register, not at ``failed``'s enable): the last code comes at least
        # `bitmill.timing.PACKER_DRAIN` cycles before ``finish`` reads ``failed``
        refused_q, failed = Signal(name="refused_q"), Signal(name="failed")
        m.d.sync += refused_q.eq(refused & ~self.start)
        with m.If(~self.busy):
            m.d.sync += failed.eq(0)
        with m.Elif(refused_q):
            m.d.sync += failed.eq(1)
        engine_error = Mux(instr.kind == VecKind.ADD, add.error, pool.error)
        m.d.comb += [self.finish.eq(left == 1), self.error.eq((left == 1) & (failed | engine_error))]
        with m.If(self.start):
            m.d.sync += self.busy.eq(1)
        with m.Elif(self.finish):
            m.d.sync += self.busy.eq(0)
