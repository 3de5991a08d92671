"""`AddEngine`: VEC ADD, ``requantize(a*m0 + b*m1, 1, bias0, shift0)`` elementwise over
operand A (SETUP's ``a_bits``, ``a_enc``, from the start of the activation slot) and operand
B (VEC's ``b_bits``, ``b_enc``, from the slot's second half), one element every
`bitmill.timing.vec_add_period` cycles.

Each operand is a stream of packed rows read word by word into a queue of
`bitmill.timing.vec_stream_words` words; the code under the stream's bit offset is cut from
the queue's first two words. The two queues share the activation read port: in alternate
cycles (A first) a queue with room reads its next word. Requant records 0 and 1 are read in
cycles 1 .. ceil(32/B). The first element issues in cycle `bitmill.timing.vec_add_first`
(queues full, records read); elements are rows of ``out_w*out_c`` codes, as many whole rows
as ``count`` holds. Stages after the issue cycle: operand codes, values, products, sum (the
result, `bitmill.timing.VEC_ADD_PIPE` cycles after the issue).

``error`` (sticky until the next ``start``): ``in_w*in_c != out_w*out_c`` or a zero row (no
elements), an encoding outside `Encoding`, an operand code beyond its half of the slot.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill import isa
from bitmill.config import AccelConfig
from bitmill.hw.pe import NOMERGE
from bitmill.hw.vector_common import (VALUE_BITS, VecGeometry, bad_encoding, decode, extract,
                                      record_layout, result_layout, slot_word_address)
from bitmill.numerics import MAX_BITS, MULT_BITS
from bitmill.timing import vec_add_first, vec_add_period, vec_stream_words


class _OperandQueue:
    """One operand stream: a queue of buffer words (``words[0]`` holds the next code), the
    bit offset of that code in ``words[0]``, the words read and the words stepped over so
    far (the bits consumed, for the bound check, are ``popped * W + offset``).

    The step over a code is formed from registers: ``end`` (the bit after the code, offset
    plus bits) and ``end_byte`` (``end`` rounded up to a byte, where a row's padding ends)
    are kept for the present code, with both successors of each worked out beside them, so
    an element's pops are a selection between two registers."""

    def __init__(self, name: str, geo: VecGeometry, base_word: int, capacity: int):
        self.name, self.geo, self.base_word, self.capacity = name, geo, base_word, capacity
        w = geo.word_bits
        # the words: reset-less (``count`` says how many hold one)
        self.words = [Signal(w, name=f"{name}_q{i}", reset_less=True) for i in range(capacity)]
        self.count = Signal(range(capacity + 1), name=f"{name}_count")
        self.offset = Signal(range(w), name=f"{name}_offset")
        self.fetched = Signal(range(2 * geo.act_slot_words + 2 * capacity + 2), name=f"{name}_fetched")
        self.popped = Signal(range(2 * geo.act_slot_words + 2 * capacity + 2), name=f"{name}_popped")
        self.request = Signal(name=f"{name}_request")
        self.arriving = Signal(name=f"{name}_arriving")
        self.starved = Signal(name=f"{name}_starved")      # an issue without its words (never)
        # the buffer addresses of slot word ``base_word + fetched`` and of the word after it,
        # each word kept inside the slot
        self.next_addr = Signal(range(geo.act_depth), name=f"{name}_addr")
        self.after_addr = Signal(range(geo.act_depth), name=f"{name}_addr_after")

    @property
    def address(self) -> Signal:
        """The buffer address this queue reads next (its word kept inside the slot): a
        register (`logic` keeps it, and the address after it, beside ``fetched``), so no
        adder comes before the buffer's address pins."""
        return self.next_addr

    def code(self, bits_m1):
        """The code under the offset (zero-extended to 8 bits)."""
        return extract(Cat(self.words[0], self.words[1]), self.offset, bits_m1)

    def beyond(self, m: Module, bits_m1, half_bits: int) -> "Value":
        """Whether the present code ends past ``half_bits`` (the operand's half of the slot):
        ``popped * W + offset > half_bits - bits``, the limit registered."""
        limit = Signal(range(half_bits + 1), name=f"{self.name}_limit")
        m.d.sync += limit.eq(half_bits - bits_m1 - 1)
        return Cat(self.offset, self.popped) > limit

    def logic(self, m: Module, reset, buffer_slot, slot_turn, consume, bits_m1, row_end, data) -> None:
        """Reads on ``slot_turn`` when the queue has room, takes a word arriving from the
        read port, and on ``consume`` steps over the code (and the row padding when
        ``row_end``, a register). ``buffer_slot``: the operands' slot, read at ``reset``."""
        geo, cap, lg = self.geo, self.capacity, self.geo.lg_word
        slot_first = Mux(buffer_slot, geo.act_slot_words, 0)        # the slot's word 0
        m.d.comb += self.request.eq(slot_turn & (self.count + self.arriving < cap))
        m.d.sync += self.arriving.eq(self.request & ~reset)
        span = range(geo.word_bits + 16)
        bits, bits7 = Signal(4, name=f"{self.name}_bits"), Signal(4, name=f"{self.name}_bits7")
        m.d.sync += [bits.eq(bits_m1 + 1), bits7.eq(bits_m1 + 8)]
        end, end_byte = Signal(span, name=f"{self.name}_end"), Signal(span, name=f"{self.name}_end_byte")

        def successors(offset) -> tuple:
            """(end, end rounded up to a byte) of the code at ``offset``."""
            return offset + bits, Cat(Const(0, 3), (offset + bits7) >> 3)

        nxt = Mux(row_end, end_byte, end)
        pops = Signal(range(3), name=f"{self.name}_pops")
        m.d.comb += pops.eq(Mux(consume, nxt >> lg, 0))
        m.d.comb += self.starved.eq(consume & (self.count < 2))
        # each word takes its pops from its own register copies of the words stepped over
        # (``end >> lg``, ``end_byte >> lg``): no net from one LUT to every bit of every word
        steps = [(Signal(len(end) - lg, name=f"{self.name}_w{i}_steps", attrs=NOMERGE),
                  Signal(len(end_byte) - lg, name=f"{self.name}_w{i}_steps_byte", attrs=NOMERGE))
                 for i in range(cap)]
        for i, reg in enumerate(self.words):
            ahead = [self.words[i + k] if i + k < cap else Const(0, geo.word_bits) for k in range(3)]
            own = Mux(consume, Mux(row_end, steps[i][1], steps[i][0]), 0)
            kept = Mux(own == 0, ahead[0], Mux(own == 1, ahead[1], ahead[2]))
            m.d.sync += reg.eq(Mux(self.arriving & (self.count - own == i), data, kept))
        slot = self.count - pops
        after_end, after_byte = successors(end[:lg]), successors(end_byte[:lg])
        slot_words = geo.act_slot_words
        inside = lambda word: min(max(word, 0), slot_words - 1)
        # the address two words on (kept inside the slot), the next after-address
        far = slot_word_address(m, f"{self.name}_addr_far", reset, buffer_slot,
                                self.base_word + self.fetched, slot_words, plus=2)
        with m.If(reset):
            m.d.sync += [self.count.eq(0), self.offset.eq(0), self.fetched.eq(0),
                         self.popped.eq(0),
                         self.next_addr.eq(slot_first + inside(self.base_word)),
                         self.after_addr.eq(slot_first + inside(self.base_word + 1))]
        with m.Else():
            m.d.sync += [self.count.eq(slot + self.arriving),
                         self.fetched.eq(self.fetched + self.request)]
            # a read steps both words on: the read address is a register, not an adder and
            # the slot's bounds after ``fetched``
            with m.If(self.request):
                m.d.sync += [self.next_addr.eq(self.after_addr), self.after_addr.eq(far)]
            with m.If(consume):
                m.d.sync += [self.offset.eq(nxt[:lg]), self.popped.eq(self.popped + pops)]
        now = successors(self.offset)
        end_next, end_byte_next = Signal.like(end), Signal.like(end_byte)
        m.d.comb += [end_next.eq(Mux(consume & ~reset, Mux(row_end, after_byte[0], after_end[0]), now[0])),
                     end_byte_next.eq(Mux(consume & ~reset, Mux(row_end, after_byte[1], after_end[1]), now[1]))]
        m.d.sync += [end.eq(end_next), end_byte.eq(end_byte_next)]
        m.d.sync += [c.eq(v[lg:]) for pair in steps for c, v in zip(pair, (end_next, end_byte_next))]


class AddEngine(wiring.Component):
    """Members: ``start``, ``instr`` (VEC body), ``regs`` (SETUP body) In; ``act_addr`` /
    ``act_data``, ``param_addr`` / ``param_data`` (buffer read ports); ``result``
    (`bitmill.hw.vector_common.result_layout`, one per element) and ``error`` Out."""

    def __init__(self, cfg: AccelConfig):
        self.geo = geo = VecGeometry(cfg)
        self.cfg = cfg
        body = isa.layout(cfg)["body"].shape
        super().__init__({
            "start": In(1), "instr": In(body["vec"].shape), "regs": In(body["setup"].shape),
            "act_addr": Out(range(geo.act_depth)), "act_data": In(geo.word_bits),
            "param_addr": Out(range(geo.param_depth)), "param_data": In(geo.word_bits),
            "result": Out(result_layout(geo.acc_bits)), "error": Out(1),
        })
        self.starved = Signal()      # an element issued before its operand words (never)

    @property
    def first_issue(self) -> int:
        """Cycle (after ``start``) of the first element (`bitmill.timing.vec_add_first`)."""
        return vec_add_first(self.cfg)

    def elaborate(self, platform) -> Module:
        m = Module()
        instr = Signal.like(self.instr, name="instr_q")
        cycle = Signal(range(self.first_issue + 2))
        active = Signal()
        with m.If(self.start):
            m.d.sync += [instr.eq(self.instr), cycle.eq(1), active.eq(1)]
        with m.Elif(active & (cycle <= self.first_issue)):
            m.d.sync += cycle.eq(cycle + 1)
        # the queues and the record address are set while the engine is idle (``active``
        # off, a register; it is off in the start cycle, when ``instr`` is the instruction
        # that starts), not on ``start``: their enables stay off the start decision
        plan = self._plan(m, instr)
        rec0, rec1 = self._records(m, cycle, active)
        queues, turns = self._queues(m, active)
        issue, flags = self._elements(m, instr, plan, cycle, active)
        self._consume(m, instr, queues, turns, issue, flags, plan, active)
        self._datapath(m, instr, queues, issue, flags, rec0, rec1)
        return m

    def _plan(self, m: Module, instr) -> dict:
        """Cycle 1: row lengths; cycle 2: checks and the element period (valid from 3)."""
        r = self.regs
        row = Signal(range((1 << len(r.out_w)) * (1 << len(r.out_c))), name="row_codes")
        in_row = Signal.like(row, name="in_row_codes")
        m.d.sync += [row.eq(r.out_w * r.out_c), in_row.eq(r.in_w * r.in_c)]
        bad_shape, empty = Signal(), Signal()
        bad = Signal()
        m.d.sync += [bad_shape.eq((row == 0) | (in_row != row)),
                     empty.eq((row == 0) | (in_row != row) | (instr.count < row)),
                     bad.eq(bad_encoding(r.a_enc) | bad_encoding(instr.b_enc))]
        periods = [vec_add_period(self.cfg, bits) for bits in range(1, MAX_BITS + 1)]
        period = Signal(range(max(periods) + 1), name="period")
        m.d.sync += period.eq(Array(periods)[r.out_bits])
        return {"row": row, "bad_shape": bad_shape, "empty": empty, "bad": bad, "period": period}

    def _records(self, m: Module, cycle, active) -> tuple:
        """Requant records 0 and 1: words 0 .. ceil(32/B)-1 of the table slot read in cycles
        1 .. ceil(32/B), shifted in as they arrive."""
        geo = self.geo
        n = -(-32 // geo.data_bytes)
        width = max(n * geo.word_bits, 256)
        table = Signal(width, name="records", reset_less=True)   # read before any use
        reading = active & (cycle >= 1) & (cycle <= n)
        # ``p_slot * slot words + cycle - 1`` in a register, stepped with ``cycle``
        addr = Signal.like(self.param_addr, name="record_addr")
        with m.If(~active):
            m.d.sync += addr.eq(self.instr.p_slot * geo.param_slot_words)
        with m.Elif(cycle <= self.first_issue):
            m.d.sync += addr.eq(addr + 1)
        m.d.comb += self.param_addr.eq(addr)
        arriving = Signal()
        m.d.sync += arriving.eq(reading)
        with m.If(arriving):
            m.d.sync += table.eq(Cat(table[geo.word_bits:], self.param_data) if n > 1
                                 else self.param_data)
        rec0 = record_layout()(table[:128])
        rec1 = record_layout()(table[128:256])
        return rec0, rec1

    def _queues(self, m: Module, active) -> tuple:
        """Operand queues A and B on the activation read port, A in the first cycle after
        ``start`` (the first with ``active``) and every second cycle after it; returns them
        and their turns to read."""
        geo = self.geo
        cap = vec_stream_words(self.cfg)
        qa = _OperandQueue("a", geo, 0, cap)
        qb = _OperandQueue("b", geo, geo.act_slot_words // 2, cap)
        turn_b = Signal()
        m.d.sync += turn_b.eq(Mux(active, ~turn_b, 0))
        m.d.comb += self.act_addr.eq(Mux(turn_b, qb.address, qa.address))
        return (qa, qb), (active & ~turn_b, active & turn_b)

    def _elements(self, m: Module, instr, plan: dict, cycle, active) -> tuple:
        """The element loop from cycle `first_issue`: ``issue`` every ``period`` cycles,
        rows of ``row`` codes while ``count`` holds another whole row."""
        row = plan["row"]
        run = Signal()
        phase = Signal.like(plan["period"], name="phase")
        j = Signal.like(row, name="in_row")
        remaining = Signal.like(instr.count, name="remaining")
        load = active & (cycle == self.first_issue - 1)       # the first issue follows
        first = active & (cycle == self.first_issue)
        # ``run & (phase == 0)``, kept in a register: worked out a cycle ahead from the
        # registers that set ``run`` and ``phase`` (the operand queues' steps hang on it)
        issue = Signal(name="issue")
        row_end = Signal(name="row_end")      # ``j == row - 1``, kept in a register
        last = Signal()
        # whether ``remaining`` holds no whole row after this one (``remaining < 2 row``),
        # kept in a register: set on load, and on each row's end from ``remaining < 3 row``
        final_row = Signal(name="final_row")
        rows2, rows3 = Signal(len(row) + 1, name="rows_x2"), Signal(len(row) + 2, name="rows_x3")
        period_m1 = Signal.like(plan["period"], name="period_m1")
        row_m2, single = Signal.like(row, name="row_m2"), Signal(name="single_code_rows")
        m.d.sync += [rows2.eq(row << 1), rows3.eq((row << 1) + row), period_m1.eq(plan["period"] - 1),
                     row_m2.eq(row - 2), single.eq(row == 1)]
        m.d.comb += last.eq(row_end & final_row)
        # ``start`` (an idle unit: neither loading nor running) clears ``run`` last, with no
        # priority over the loop's registers (their enables stay off the start decision)
        with m.If(load):
            m.d.sync += [run.eq(~plan["empty"]), phase.eq(0), j.eq(0), remaining.eq(instr.count),
                         final_row.eq(instr.count < rows2), row_end.eq(single)]
        with m.Elif(run):
            m.d.sync += phase.eq(Mux(phase == period_m1, 0, phase + 1))
            with m.If(issue):
                m.d.sync += [j.eq(Mux(row_end, 0, j + 1)), row_end.eq(Mux(row_end, single, j == row_m2))]
                with m.If(row_end):
                    m.d.sync += [remaining.eq(remaining - row), final_row.eq(remaining < rows3)]
                with m.If(last):
                    m.d.sync += [run.eq(0), active.eq(0)]
        with m.If(load):
            m.d.sync += issue.eq(~plan["empty"])
        with m.Else():
            m.d.sync += issue.eq(run & (phase == period_m1) & ~(issue & last))
        with m.If(self.start):
            m.d.sync += [run.eq(0), issue.eq(0)]
        empty_result = first & plan["empty"]
        with m.If(empty_result):
            m.d.sync += active.eq(0)
        return issue, {"row_end": row_end, "last": last, "empty": empty_result}

    def _consume(self, m: Module, instr, queues, turns, issue, flags, plan, active) -> None:
        """Both queues step over their codes on ``issue``; bound checks; ``error``."""
        geo, r = self.geo, self.regs
        half_bits = 8 * (geo.act_slot_bytes // 2)
        bits = (r.a_bits, instr.b_bits)
        beyond = Signal()
        checks = []
        for q, turn, bits_m1 in zip(queues, turns, bits):
            q.logic(m, ~active, self.instr.a_slot, turn, issue, bits_m1, flags["row_end"], self.act_data)
            checks.append(q.beyond(m, bits_m1, half_bits))
        m.d.comb += beyond.eq(issue & (checks[0] | checks[1]))
        with m.If(self.start):
            m.d.sync += self.error.eq(0)
        with m.Elif(beyond | (flags["empty"] & (plan["bad_shape"] | plan["bad"]))
                    | (issue & plan["bad"])):
            m.d.sync += self.error.eq(1)
        m.d.comb += self.starved.eq(queues[0].starved | queues[1].starved)

    def _datapath(self, m: Module, instr, queues, issue, flags, rec0, rec1) -> None:
        """Codes, values, products, sum: the result four cycles after the issue."""
        r = self.regs
        qa, qb = queues
        s1 = {k: Signal(name=f"s1_{k}") for k in ("valid", "row_end", "last")}
        code_a, code_b = Signal(8, name="s1_code_a"), Signal(8, name="s1_code_b")
        m.d.sync += [s1["valid"].eq(issue), s1["row_end"].eq(flags["row_end"]),
                     s1["last"].eq(flags["last"]), code_a.eq(qa.code(r.a_bits)),
                     code_b.eq(qb.code(instr.b_bits))]
        va = decode(m, "a", code_a, r.a_bits, r.a_enc)
        vb = decode(m, "b", code_b, instr.b_bits, instr.b_enc)
        s2 = {k: Signal(name=f"s2_{k}") for k in s1}
        val_a, val_b = Signal(signed(VALUE_BITS), name="s2_a"), Signal(signed(VALUE_BITS), name="s2_b")
        m.d.sync += [s2[k].eq(v) for k, v in s1.items()] + [val_a.eq(va), val_b.eq(vb)]
        s3 = {k: Signal(name=f"s3_{k}") for k in s1}
        width = VALUE_BITS + MULT_BITS
        pa, pb = Signal(signed(width), name="s3_pa"), Signal(signed(width), name="s3_pb")
        m.d.sync += [s3[k].eq(v) for k, v in s2.items()] + [pa.eq(val_a * rec0.mult),
                                                            pb.eq(val_b * rec1.mult)]
        res = self.result
        m.d.sync += [res.valid.eq(s3["valid"]), res.row_end.eq(s3["row_end"]),
                     res.last.eq(s3["last"]), res.write.eq(1), res.requant.eq(1),
                     res.value.eq(pa + pb), res.mult.eq(1), res.shift.eq(rec0.shift),
                     res.bias.eq(rec0.bias)]
        with m.If(flags["empty"]):
            m.d.sync += [res.valid.eq(1), res.last.eq(1), res.write.eq(0), res.requant.eq(0),
                         res.row_end.eq(0)]
