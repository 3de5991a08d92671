"""`PoolEngine`: VEC MAXPOOL and AVGPOOL, one window tap per cycle.

A loop nest of six levels walks the taps; each level keeps the bit address and the input
row and column of the start of its current iteration, so a step is one addition:

=========  ==============================  ==============================
level      MAXPOOL (rows of the band)      AVGPOOL (one row of channels)
=========  ==============================  ==============================
``y``      output rows while ``count``     one
           holds another whole row
``x``      ``out_w`` pixels (``stride``)   one
``c``      ``out_c`` channels              ``in_c`` channels
``dy``     ``kernel`` rows                 ``in_h`` rows
``dx``     ``kernel`` columns              ``in_w`` columns
``sub``    cycles of a tap                 cycles of a tap
=========  ==============================  ==============================

A tap reads the buffer word holding its code (and the next word in a second cycle when
``a_bits`` does not divide 8, `bitmill.timing.vec_tap_cycles`); a MAXPOOL tap outside the
image takes one below the lowest code value. The nest's bit addresses are the buffer's own
(the slot's first bit added to the first tap's) and the ``sub`` level steps them by a word, so
a tap's read address is the nest's register without its low bits, no adder between them
(a read outside the slot, of a tap outside the image or of a cycle that paces the codes, is
never used). AVGPOOL reads the channel's requant record in
the `bitmill.timing.vec_record_words` cycles before the channel's first tap, then waits one.
Stages after a tap's last cycle: read data, data registered (the code cut from them and
decoded), value, accumulator (the result, `bitmill.timing.VEC_POOL_PIPE` cycles later). Planning (cycles 1-4): the products of the
row pitch and the first row's address; the first tap is in cycle
`bitmill.timing.VEC_POOL_FIRST`.

``error`` (sticky until the next ``start``): fields breaking `bitmill.timing.vec_elements`'
rules or an unknown kind (no elements), an encoding outside `Encoding`, a tap inside the
image but outside the slot or above the band (``band_row0``), more AVGPOOL records than the
table slot holds.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill import isa
from bitmill.config import AccelConfig
from bitmill.hw.arith import shift_add
from bitmill.hw.vector_common import (RECORD_BYTES, VALUE_BITS, VecGeometry, bad_encoding,
                                      decode, extract, fill_value, record_layout,
                                      result_layout, slot_word_address)
from bitmill.isa import VecKind
from bitmill.numerics import MAX_BITS
from bitmill.timing import VEC_POOL_FIRST, vec_out_period, vec_record_words

LEVELS = ("y", "x", "c", "dy", "dx", "sub")
COORDS = ("addr", "row", "col")
PLAN_CYCLES = VEC_POOL_FIRST - 1        # the nest is loaded in the last planning cycle


def _one_hot(*choices) -> Value:
    """The value of the one ``(select, value)`` pair whose select is high (zero if none)."""
    width = max(len(v) for _, v in choices)
    out = Const(0, width)
    for sel, v in choices:
        out = out | (sel.replicate(width) & v.as_unsigned())
    return out


class PoolEngine(wiring.Component):
    """Members: ``start``, ``instr`` (VEC body), ``regs`` (SETUP body) In; ``act_addr`` /
    ``act_data``, ``param_addr`` / ``param_data`` (buffer read ports); ``result``
    (`bitmill.hw.vector_common.result_layout`, one per output element) and ``error`` Out."""

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

    def elaborate(self, platform) -> Module:
        m = Module()
        instr = Signal.like(self.instr, name="instr_q")
        cycle = Signal(range(VEC_POOL_FIRST + 2))
        with m.If(self.start):
            m.d.sync += [instr.eq(self.instr), cycle.eq(1)]
        with m.Elif((cycle != 0) & (cycle <= VEC_POOL_FIRST)):
            m.d.sync += cycle.eq(cycle + 1)
        plan = self._plan(m, instr)
        nest = self._nest(m, instr, plan, cycle)
        record = self._records(m, plan, nest)
        tap = self._tap(m, plan, nest)
        self._pipeline(m, instr, plan, tap, record, cycle == VEC_POOL_FIRST)
        return m

    # ---- planning ---------------------------------------------------------------------------
    def _plan(self, m: Module, instr) -> dict:
        """Products and checks, registered in cycles 1-3 (values valid from cycle 4; the
        products of the layer registers alone in four stages from the cycle after SETUP)."""
        r, geo = self.regs, self.geo
        maxpool = instr.kind == VecKind.MAXPOOL
        avg = instr.kind == VecKind.AVGPOOL
        a = r.a_bits + 1
        k, s, p = r.kernel, r.stride, r.pad
        # the code width in a register of its own: the row's bits, the channel's bits (``ca``,
        # valid a stage later than the other p1 products, two before the nest reads ``pca``),
        # the nest's channel step and the tap's code end use it (no adder on the layer register
        # before them)
        a_q = Signal(len(a), name="p1_code_bits")
        m.d.sync += a_q.eq(a)
        p1 = {n: Signal(w, name=f"p1_{n}") for n, w in (
            ("in_row", len(r.in_w) + len(r.in_c)), ("ca", len(r.in_c) + 4),
            ("row", len(r.out_w) + len(r.out_c)), ("pix", len(r.in_h) + len(r.in_w)), ("k2", 6))}
        top0 = Signal(signed(len(r.out_row0) + 4), name="p1_top0")
        span, p2_bad, p2_empty = (Signal(len(r.out_w) + len(s) + 1, name="p1_span"), Signal(name="p3_bad"),
                                  Signal(name="p3_empty"))
        m.d.sync += [p1["in_row"].eq(r.in_w * r.in_c), p1["ca"].eq(shift_add(r.in_c, a_q)),
                     p1["row"].eq(r.out_w * r.out_c), p1["pix"].eq(r.in_h * r.in_w),
                     p1["k2"].eq(shift_add(k, k)), top0.eq(shift_add(r.out_row0, s) - p),
                     span.eq(shift_add(r.out_w, s) - s)]
        # the layer registers hold from the cycle after SETUP, at least one cycle before the
        # VEC starts, so what depends on them alone may take one more stage than the checks
        # on ``instr`` (the pitch: a registered product, then the rounding to bytes)
        row_bits = Signal(len(p1["in_row"]) + 4, name="p2_row_bits")
        pitch = Signal(len(p1["in_row"]) + 7, name="p3_pitch_bits")
        sca, pca = (Signal(len(p1["ca"]) + 2, name=f"p2_{n}") for n in ("sca", "pca"))
        rowstart = Signal(signed(len(top0) + 1), name="p2_rowstart")
        m.d.sync += [row_bits.eq(shift_add(p1["in_row"], a_q)), pitch.eq(Cat(Const(0, 3), (row_bits + 7) >> 3)),
                     sca.eq(shift_add(p1["ca"], s)), pca.eq(shift_add(p1["ca"], p)), rowstart.eq(top0 - r.band_row0)]
        span_ok, short = Signal(name="p2_span_ok"), Signal(name="p2_count_short")
        m.d.sync += [span_ok.eq(span + k <= r.in_w + 2 * p), short.eq(instr.count < p1["row"])]
        bad_max = ((p1["row"] == 0) | (p1["in_row"] == 0) | (r.in_c != r.out_c) | (k == 0)
                   | (s == 0) | ~span_ok)
        bad_avg = (r.in_c == 0) | (p1["pix"] == 0) | (r.out_w != 1) | (r.out_c != r.in_c)
        bad = Mux(maxpool, bad_max, Mux(avg, bad_avg, 1))
        m.d.sync += [p2_bad.eq(bad), p2_empty.eq(bad | (maxpool & short))]
        spitch = Signal(len(pitch) + 2, name="p4_spitch")
        rowbase = Signal(signed(len(rowstart) + len(pitch) + 1), name="p4_rowbase")
        m.d.sync += [spitch.eq(shift_add(pitch, s)), rowbase.eq(rowstart * pitch)]
        tc = Signal(range(3), name="tap_cycles")
        m.d.comb += tc.eq(Mux((a == 1) | (a == 2) | (a == 4) | (a == 8), 1, 2))
        sub = Signal(range(8), name="p1_sub_cycles")         # cycles per tap: an element
        gap = self._out_taps(m, k)                            # of k^2 taps paces the codes
        m.d.sync += sub.eq(Mux(maxpool & (gap > tc), gap, tc))
        oversize = avg & (r.in_c > geo.param_slot_bytes // RECORD_BYTES)
        # the activation slot's first bit and the bit after it, set at start
        slot_bits = 8 * geo.act_slot_bytes
        slot_bit0 = Signal(range(2 * slot_bits + 1), name="slot_bit0")
        slot_end = Signal(range(2 * slot_bits + 1), name="slot_bit_end")
        with m.If(self.start):
            m.d.sync += [slot_bit0.eq(Mux(self.instr.a_slot, slot_bits, 0)),
                         slot_end.eq(Mux(self.instr.a_slot, 2 * slot_bits, slot_bits))]
        return {"slot_bit0": slot_bit0, "slot_end": slot_end, "maxpool": maxpool, "avg": avg,
                "a": a_q, "tc": tc, "sub": sub, "pitch": pitch, "spitch": spitch, "sca": sca,
                "pca": pca, "ca": p1["ca"], "row": p1["row"],
                "top0": top0, "rowbase": rowbase, "bad": p2_bad, "empty": p2_empty,
                "enc_bad": bad_encoding(r.a_enc), "oversize": oversize}

    def _out_taps(self, m: Module, k) -> Signal:
        """``ceil(vec_out_period / k^2)``: cycles per tap for MAXPOOL elements to reach the
        code period (at most 7 cycles, so 2 for k = 2 and 1 beyond)."""
        periods = [vec_out_period(self.cfg, bits) for bits in range(1, MAX_BITS + 1)]
        period = Signal(range(max(periods) + 1), name="out_period")
        m.d.comb += period.eq(Array(periods)[self.regs.out_bits])
        gap = Signal.like(period, name="tap_gap")
        m.d.comb += gap.eq(Mux(k == 1, period, Mux(k == 2, (period + 3) >> 2, 1)))
        return gap

    # ---- loop nest ------------------------------------------------------------------------
    def _levels(self, m: Module, plan: dict, idx: dict, final_row) -> tuple[dict, dict, dict]:
        """Per level: whether its index is the last, its step of each coordinate, and the
        registers behind the first: each level's last index (and one less) and whether its
        index is there (`_nest` keeps that up to date; the layer registers and the plan are
        stable long before the nest runs)."""
        r, mp = self.regs, plan["maxpool"]
        ends = {"x": r.out_w - 1, "c": r.out_c - 1, "dy": Mux(mp, r.kernel, r.in_h) - 1,
                "dx": Mux(mp, r.kernel, r.in_w) - 1, "sub": plan["sub"] - 1}
        end = {n: Signal(len(idx[n]), name=f"end_{n}") for n in ends}
        end_m1 = {n: Signal(len(idx[n]), name=f"end_m1_{n}") for n in ends}
        m.d.sync += [end[n].eq(v) for n, v in ends.items()] + [end_m1[n].eq(end[n] - 1) for n in ends]
        at_end = {n: Signal(name=f"at_end_{n}") for n in ends}
        last = {"y": ~mp | final_row, "x": ~mp | at_end["x"],
                **{n: at_end[n] for n in ("c", "dy", "dx", "sub")}}
        step = {"y": {"addr": plan["spitch"], "row": r.stride},
                "x": {"addr": plan["sca"], "col": r.stride},
                "c": {"addr": plan["a"]}, "dy": {"addr": plan["pitch"], "row": 1},
                "dx": {"addr": plan["ca"], "col": 1}, "sub": {"addr": self.geo.word_bits}}
        return last, step, {"end": end, "end_m1": end_m1, "at_end": at_end}

    def _origin(self, plan: dict) -> dict:
        """The coordinates of the first tap: MAXPOOL's top-left window corner (in the
        padding), AVGPOOL's first code; the address from the slot's first bit."""
        mp = plan["maxpool"]
        return {"addr": Mux(mp, plan["rowbase"] - plan["pca"], 0) + plan["slot_bit0"],
                "row": Mux(mp, plan["top0"], 0), "col": Mux(mp, -self.regs.pad, 0)}

    def _nest(self, m: Module, instr, plan: dict, cycle) -> dict:
        """The six-level loop; loaded in cycle `PLAN_CYCLES`, one step per cycle while
        ``run`` and no record is being read."""
        r = self.regs
        buffer_bits = (self.geo.act_depth * self.geo.word_bits).bit_length()
        widths = {"addr": max(len(plan["rowbase"]), buffer_bits) + 5, "row": len(r.in_h) + 5,
                  "col": len(r.in_w) + 5}
        idx_bits = max(len(r.out_w), len(r.out_c), len(r.in_h), len(r.in_w), 3)
        idx = {n: Signal(idx_bits, name=f"i_{n}") for n in LEVELS}
        base = {(n, c): Signal(signed(widths[c]), name=f"b_{n}_{c}") for n in LEVELS for c in COORDS}
        remaining = Signal.like(instr.count, name="remaining")
        run, pre = Signal(name="run"), Signal(range(vec_record_words(self.cfg) + 2), name="pre")
        # the record word being read, R + 1 - pre, kept beside ``pre`` in a register
        rec_k = Signal(range(vec_record_words(self.cfg) + 2), name="record_k")
        pre_idle = Signal(init=1, name="pre_idle")          # pre == 0, kept in a register
        # whether ``remaining`` holds no whole row after this one (``remaining < 2 row``), in
        # a register: set on load, and as a row of outputs ends from ``remaining < 3 row``
        final_row = Signal(name="final_row")
        rows2 = Signal(len(plan["row"]) + 1, name="rows_x2")
        rows3 = Signal(len(plan["row"]) + 2, name="rows_x3")
        m.d.sync += [rows2.eq(plan["row"] << 1), rows3.eq((plan["row"] << 1) + plan["row"])]
        last, step, ends = self._levels(m, plan, idx, final_row)
        # a level advances when every level inside it is at its last index and it is not;
        # each condition is one flat AND of registers (no carry through the levels)
        stepping = run & pre_idle
        advance = {}
        for j, n in enumerate(LEVELS):
            advance[n] = Signal(name=f"adv_{n}")
            m.d.comb += advance[n].eq(Cat(stepping, ~last[n], *(last[i] for i in LEVELS[j + 1:])).all())
        done = Signal(name="nest_done")
        m.d.comb += done.eq(Cat(stepping, *(last[i] for i in LEVELS)).all())
        reload = plan["avg"] * (vec_record_words(self.cfg) + 1)
        rec_reload = Mux(plan["avg"], 0, vec_record_words(self.cfg) + 1)
        with m.If(cycle == PLAN_CYCLES):
            m.d.sync += [run.eq(~plan["empty"]), remaining.eq(instr.count), pre.eq(reload),
                         rec_k.eq(rec_reload), final_row.eq(instr.count < rows2),
                         pre_idle.eq(~plan["avg"])]
            m.d.sync += [idx[n].eq(0) for n in LEVELS]
            m.d.sync += [flag.eq(ends["end"][n] == 0) for n, flag in ends["at_end"].items()]
            m.d.sync += [base[n, c].eq(v) for c, v in self._origin(plan).items() for n in LEVELS]
        with m.Elif(pre != 0):
            m.d.sync += [pre.eq(pre - 1), rec_k.eq(rec_k + 1), pre_idle.eq(pre == 1)]
        # one level advances at most: every register takes its new value through a one-hot
        # AND-OR of the levels at or outside its own (no priority chain)
        # each level's sum a wire of its own (``keep``): synthesis would otherwise share the
        # adders behind the one-hot choice, putting the choice before one adder and chaining
        # the levels' carries
        moved = {(n, c): Signal(signed(widths[c]), name=f"moved_{n}_{c}", attrs={"keep": 1})
                 for n in LEVELS for c in COORDS}
        m.d.comb += [moved[n, c].eq(base[n, c] + step[n].get(c, 0)) for n in LEVELS for c in COORDS]
        for j, lv in enumerate(LEVELS):
            outer = LEVELS[:j + 1]
            # a level at or outside this one advances: the levels inside are all last and
            # not all of these are
            moving = Signal(name=f"moving_{lv}")
            m.d.comb += moving.eq(Cat(stepping, *(last[i] for i in LEVELS[j + 1:])).all()
                                  & ~Cat(*(last[i] for i in outer)).all())
            with m.If(moving):
                m.d.sync += idx[lv].eq(Mux(advance[lv], idx[lv] + 1, 0))
                if lv in ends["at_end"]:
                    m.d.sync += ends["at_end"][lv].eq(Mux(advance[lv], idx[lv] == ends["end_m1"][lv],
                                                          ends["end"][lv] == 0))
                for c in COORDS:
                    m.d.sync += base[lv, c].eq(
                        _one_hot(*((advance[n], moved[n, c]) for n in outer)))
        with m.If(advance["y"]):
            m.d.sync += [remaining.eq(remaining - plan["row"]), final_row.eq(remaining < rows3)]
        with m.If(advance["c"]):
            m.d.sync += [pre.eq(reload), rec_k.eq(rec_reload), pre_idle.eq(~plan["avg"])]
        with m.If(done | self.start):
            m.d.sync += run.eq(0)
        here = {c: base["sub", c] for c in COORDS}
        return {"idx": idx, "last": last, "run": run, "pre": pre, "record_k": rec_k, "here": here, "done": done}

    # ---- requant records (AVGPOOL) --------------------------------------------------------
    def _records(self, m: Module, plan: dict, nest: dict):
        """The channel's record: read while ``pre`` counts down from ``R + 1`` to 2."""
        geo, rw = self.geo, vec_record_words(self.cfg)
        chan = nest["idx"]["c"][:len(self.regs.in_c)]
        pre = nest["pre"]
        if geo.data_bytes <= RECORD_BYTES:
            word = (chan * rw) + nest["record_k"]
            lane = Const(0, 1)
        else:
            lg = (geo.data_bytes // RECORD_BYTES).bit_length() - 1      # records per word
            word, lane = chan >> lg, chan[:lg]
        m.d.comb += self.param_addr.eq(slot_word_address(m, "record_addr", self.start, self.instr.p_slot,
                                                         word, geo.param_slot_words))
        arriving, lane_q = Signal(name="record_arriving"), Signal.like(lane, name="record_lane")
        m.d.sync += [arriving.eq(nest["run"] & (pre >= 2)), lane_q.eq(lane)]
        asm = Signal(8 * RECORD_BYTES, name="record", reset_less=True)
        with m.If(arriving):
            if geo.data_bytes < RECORD_BYTES:
                m.d.sync += asm.eq(Cat(asm[geo.word_bits:], self.param_data))
            else:
                m.d.sync += asm.eq(self.param_data.word_select(lane_q, 8 * RECORD_BYTES))
        return asm

    # ---- taps -----------------------------------------------------------------------------
    def _tap(self, m: Module, plan: dict, nest: dict) -> dict:
        """The tap of this cycle: read address, flags, whether inside the image; checks."""
        r, geo = self.regs, self.geo
        idx, last, here = nest["idx"], nest["last"], nest["here"]
        sub = idx["sub"]
        taps = nest["run"] & (nest["pre"] == 0)
        # the buffer word of this cycle: the nest's bit address without its low bits (the
        # ``sub`` level steps it by a word for a tap's second word)
        m.d.comb += self.act_addr.eq(here["addr"] >> geo.lg_word)
        inside = ((here["row"] >= 0) & (here["row"] < r.in_h)
                  & (here["col"] >= 0) & (here["col"] < r.in_w))
        # a tap inside the image but above the band or with its code past the slot's end (from
        # the tap's first cycle: its code's address), checked over two registered stages (the
        # flag is read at ``finish``, at least `bitmill.timing.PACKER_DRAIN` cycles after the
        # last tap's result)
        check, above, first = Signal(name="tap_check"), Signal(name="tap_above"), Signal(name="tap_sub0")
        code_end = Signal(signed(len(here["addr"]) + 1), name="tap_code_end")
        m.d.sync += [check.eq(taps & inside & ~self.start), code_end.eq(here["addr"] + plan["a"]),
                     above.eq(plan["maxpool"] & (here["row"] < r.band_row0)), first.eq(sub == 0)]
        outside_slot = Signal(name="tap_outside_slot")
        m.d.sync += outside_slot.eq(check & (above | (first & (code_end > plan["slot_end"])))
                                    & ~self.start)
        tap = {"emit": taps & (sub == plan["tc"] - 1),
               "first": (idx["dy"] == 0) & (idx["dx"] == 0),
               "last_tap": last["dy"] & last["dx"],
               "row_end": last["x"] & last["c"],
               "last": last["y"] & last["x"] & last["c"],
               "real": inside, "offset": here["addr"][:geo.lg_word]}
        with m.If(self.start):
            m.d.sync += self.error.eq(0)
        with m.Elif(outside_slot | (nest["run"] & plan["oversize"])
                    | (nest["run"] & plan["enc_bad"])):
            m.d.sync += self.error.eq(1)
        return tap

    def _pipeline(self, m: Module, instr, plan: dict, tap: dict, record, phantom_at) -> None:
        """Read data, code, value, accumulator; the result on the last tap of an element."""
        r, geo = self.regs, self.geo
        flags = ("emit", "first", "last_tap", "row_end", "last", "real")
        s1 = {f: Signal(name=f"t1_{f}") for f in flags}
        off1 = Signal(geo.lg_word + 1, name="t1_offset")
        rec1 = Signal.like(record, name="t1_record", reset_less=True)
        # the read data registered as they are (reset-less, always: on ECP5 the block RAM's
        # own output register, `bitmill.hw.ecp5`), and the word before them
        word = Signal(geo.word_bits, name="t2_word", reset_less=True)
        prev = Signal(geo.word_bits, name="t2_prev")
        m.d.sync += [s1[f].eq(tap[f]) for f in flags]
        m.d.sync += [off1.eq(tap["offset"] + Mux(plan["tc"] == 1, geo.word_bits, 0)),
                     rec1.eq(record), word.eq(self.act_data), prev.eq(word)]
        s2 = {f: Signal(name=f"t2_{f}") for f in flags}
        off2 = Signal.like(off1, name="t2_offset")
        rec2 = Signal.like(record, name="t2_record", reset_less=True)
        m.d.sync += [s2[f].eq(s1[f]) for f in flags]
        # the bit of the code's top bit in the window, beside its offset: the sign is selected
        # from the window in parallel with the code (not from the code after it)
        top2 = Signal(len(off1) + 1, name="t2_top")
        m.d.sync += [off2.eq(off1), top2.eq(off1 + r.a_bits), rec2.eq(rec1)]
        code = Signal(8, name="t2_code")
        window = Cat(prev, word)
        m.d.comb += code.eq(extract(window, off2, r.a_bits))
        value = decode(m, "tap", code, r.a_bits, r.a_enc, top_set=window.bit_select(top2, 1))
        fill = fill_value(m, "pad", r.a_bits, r.a_enc)
        s3 = {f: Signal(name=f"t3_{f}") for f in flags}
        v3 = Signal(signed(VALUE_BITS), name="t3_value")
        rec3 = Signal.like(record, name="t3_record", reset_less=True)
        m.d.sync += [s3[f].eq(s2[f]) for f in flags]
        m.d.sync += [v3.eq(Mux(s2["real"], value, fill)), rec3.eq(rec2)]
        acc = Signal(signed(geo.acc_bits), name="acc")
        nxt = Signal(signed(geo.acc_bits), name="acc_next")
        m.d.comb += nxt.eq(Mux(s3["first"], v3, Mux(plan["maxpool"], Mux(v3 > acc, v3, acc), acc + v3)))
        with m.If(s3["emit"]):
            m.d.sync += acc.eq(nxt)
        rec = record_layout()(rec3)
        res = self.result
        m.d.sync += [res.valid.eq(s3["emit"] & s3["last_tap"]), res.value.eq(nxt),
                     res.requant.eq(plan["avg"]), res.write.eq(1), res.row_end.eq(s3["row_end"]),
                     res.last.eq(s3["last"]), res.mult.eq(rec.mult), res.shift.eq(rec.shift),
                     res.bias.eq(rec.bias)]
        with m.If(phantom_at & plan["empty"]):
            m.d.sync += [res.valid.eq(1), res.last.eq(1), res.write.eq(0), res.requant.eq(0),
                         res.row_end.eq(0)]
            with m.If(plan["bad"] | plan["enc_bad"]):
                m.d.sync += self.error.eq(1)
