"""Processing elements: one K-lane dot-product unit with its accumulator, in two families
behind one interface (``w``, ``a``, ``ctrl`` in; ``acc``, ``done`` out).

* `BitSerialPE`: ``w`` and ``a`` are K-lane bit-planes. Each step adds the weighted popcount
  of ``w & a`` MSB-first (Horner): ``acc = (shift ? 2*acc : acc) +/- term`` where ``term`` is
  ``popcount(w & a)``, or ``2*popcount(w & a) - popcount(a)`` for bipolar (odd-grid) weight
  planes. Only a 1-bit shift, no barrel shifter.
* `BitParallelPE`: ``w`` and ``a`` are K signed 9-bit values; K products are summed by an
  adder tree and accumulated. Multipliers are plain ``*`` (DSP-inferable).

Both end in the registered stages `bitmill.timing.TERM_STAGES` and
`bitmill.timing.ACCUMULATE_STAGES` (one each), so that each holds one carry chain: *term*
(``+/-(pos - sub)`` as one subtraction of multiplexed operands) and *accumulate*
(``acc = base + term``). The control word that drives them is copied into every PE by a
register marked `NOMERGE` (synthesis keeps the copies apart instead of merging them into one
register that fans out to every accumulator bit of the array). The control word's registers
and the accumulator are reset-less: the control word follows the sequencer every cycle, and
a tile's first step sets the accumulator (``first``), so neither needs a reset, and none of
them carries reset logic (on ECP5 a kept copy's reset is a LUT, shared by every copy).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bitmill.hw.cells import check_cells, make_cells
from bitmill.hw.params import VALUE_BITS, check_family, check_positive
from bitmill.hw.popcount import Popcount
from bitmill.hw.tree import AdderTree
from bitmill.timing import multiply_stages, pe_stages

# Attribute of registers that synthesis must not merge with identical ones (`bitmill.hw.synth`
# marks the flip-flops driving such signals ``keep``): per-PE copies of broadcast values.
NOMERGE = {"bitmill_nomerge": 1}


def copy_register(shape, name: str) -> Signal:
    """A register copy of a broadcast value: `NOMERGE` and reset-less (it follows its source
    every cycle, so a reset would only put logic in front of it)."""
    return Signal(shape, name=name, attrs=NOMERGE, reset_less=True)


# One step of the sequencer, travelling down the pipeline beside its operands.
Ctrl = data.StructLayout({
    "valid": 1,     # this step carries operands
    "first": 1,     # first step of a tile: start from 0
    "last": 1,      # last step of a tile: the accumulator then holds the result
    "shift": 1,     # significance dropped by one: double the accumulator first
    "neg": 1,       # the plane pair has negative weight (a signed MSB plane)
    "bipolar": 1,   # weight planes are +1/-1 (odd grid)
})


def operand_layout(family: str, lanes: int) -> data.ArrayLayout:
    """Per-PE operand of one step: a K-bit plane (bitserial) or K signed 9-bit values."""
    lane = 1 if family == "bitserial" else signed(VALUE_BITS)
    return data.ArrayLayout(lane, lanes)


class _PE(wiring.Component):
    """Common interface, parameters and accumulate stage of both PE families.

    ``cells`` (bit-serial only): how the popcounts are mapped, None or a
    `bitmill.hw.popcount.Popcount` cell style. ``column_count``: ``popcount(a)`` comes in
    through ``a_count`` (one per array column, `bitmill.hw.array.MacArray`, aligned with the
    PE's own count) instead of being computed here."""

    family = ""

    def __init__(self, lanes: int, acc_width: int, cells: str | None = None,
                 column_count: bool = False):
        self._lanes = check_positive("lanes", lanes, 4096)
        self._acc_width = check_positive("acc_width", acc_width, 64)
        self._cells = check_cells(cells)
        self._column_count = bool(column_count) and self.family == "bitserial"
        layout = operand_layout(self.family, lanes)
        members = {
            "w": In(layout), "a": In(layout), "ctrl": In(Ctrl),
            "acc": Out(signed(acc_width)),
            "done": Out(1),          # pulses in the cycle after the last step accumulated
        }
        if self._column_count:
            members["a_count"] = In(unsigned(lanes.bit_length()))
        super().__init__(members)

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def acc_width(self) -> int:
        return self._acc_width

    @property
    def latency(self) -> int:
        """Cycles from a step at ``w``/``a``/``ctrl`` to its effect in ``acc``."""
        return pe_stages(self.family, self._lanes)

    def _delay_ctrl(self, m: Module, cycles: int, last_attrs: dict | None = None):
        """``ctrl`` delayed by ``cycles`` registers, to meet the tree output; the last one
        carries ``last_attrs``."""
        cur = self.ctrl
        for n in range(cycles):
            attrs = last_attrs if n == cycles - 1 else None
            nxt = Signal(Ctrl, name=f"ctrl_d{n + 1}", attrs=attrs or {}, reset_less=True)
            m.d.sync += nxt.eq(cur)
            cur = nxt
        return cur

    def _term_and_accumulate(self, m: Module, ctrl, difference: Value, width: int) -> None:
        """Term stage ``term = difference`` (``neg ? sub - pos : pos - sub``, ``width`` bits;
        ``ctrl`` is the control word beside it), then the accumulate stage, Horner step
        ``acc = base + term``, driven by a per-PE copy of the control word."""
        term = Signal(signed(width), name="term", reset_less=True)
        m.d.sync += term.eq(difference)
        late = copy_register(Ctrl, "ctrl_acc")
        m.d.sync += late.eq(ctrl)
        acc = Signal.like(self.acc, name="acc_reg", reset_less=True)
        m.d.comb += self.acc.eq(acc)
        held = Mux(late.shift, acc << 1, acc)
        base = Mux(late.first, 0, held)
        with m.If(late.valid):
            m.d.sync += acc.eq(term + base)
        m.d.sync += self.done.eq(late.valid & late.last)


class BitSerialPE(_PE):
    """AND + pipelined popcount + Horner accumulator over K-lane bit-planes."""

    family = "bitserial"

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.count_wa = count_wa = Popcount(self._lanes, gated=True, cells=self._cells)
        m.d.comb += [count_wa.x.eq(self.w), count_wa.mask.eq(self.a)]
        if self._column_count:
            a_count = self.a_count
        else:
            m.submodules.count_a = count_a = Popcount(self._lanes, sum_attrs=NOMERGE,
                                                      cells=self._cells)
            m.d.comb += count_a.x.eq(self.a)
            a_count = count_a.sum
        ctrl = self._delay_ctrl(m, count_wa.latency, NOMERGE)
        width = len(count_wa.sum) + 3
        if self._cells is None:
            pos = Mux(ctrl.bipolar, count_wa.sum << 1, count_wa.sum)
            sub = Mux(ctrl.bipolar, a_count, 0)
            difference = Mux(ctrl.neg, sub, pos) - Mux(ctrl.neg, pos, sub)
        else:
            difference = mapped_difference(m, make_cells(self._cells), count_wa.sum, a_count,
                                           ctrl.bipolar, ctrl.neg, width)
        self._term_and_accumulate(m, ctrl, difference, width)
        return m


class BitParallelPE(_PE):
    """K signed 9x9 multipliers (one register stage), a pipelined adder tree, accumulator."""

    family = "bitparallel"

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.tree = tree = AdderTree(self._lanes, signed(2 * VALUE_BITS))
        stages = multiply_stages(self.family)       # the last register is the tree's input
        for k in range(self._lanes):
            product = self.w[k] * self.a[k]
            for n in range(stages - 1):
                reg = Signal(signed(2 * VALUE_BITS), name=f"product{k}_q{n + 1}", reset_less=True)
                m.d.sync += reg.eq(product)
                product = reg
            m.d.sync += tree.inputs[k].eq(product)
        ctrl = self._delay_ctrl(m, stages + tree.latency)
        difference = Mux(ctrl.neg, 0, tree.sum) - Mux(ctrl.neg, tree.sum, 0)
        self._term_and_accumulate(m, ctrl, difference, len(tree.sum) + 2)
        return m


def mapped_difference(m: Module, cells, count: Value, a_count: Value, bipolar: Value,
                      neg: Value, width: int) -> Value:
    """``neg ? sub - pos : pos - sub`` with ``pos = bipolar ? 2*count : count`` and
    ``sub = bipolar ? a_count : 0``, on 7-series cells: bit ``i`` of both operands is a
    function of five bits (``count[i]``, ``count[i-1]``, ``a_count[i]``, ``bipolar``,
    ``neg``), so one dual-output LUT gives the carry chain both its ``S`` (``A ^ ~B``) and
    its ``DI`` (``A``); the chain adds ``A + ~B + 1``. ``width`` bits, two's complement."""
    n = len(count)

    def bits(i):
        return [count[i] if i < n else None, count[i - 1] if 1 <= i <= n else None,
                a_count[i] if i < len(a_count) else None]

    def operands(c0, c1, ac, bip, ng):
        pos = c1 if bip else c0
        sub = ac & bip
        return (sub, pos) if ng else (pos, sub)

    s_bits, di_bits = [], []
    for i in range(width):
        present = [b for b in bits(i) if b is not None]
        if not present:                      # both operands 0 here: S = ~(0 ^ 0), DI = 0
            s_bits.append(Const(1, 1))
            di_bits.append(Const(0, 1))
            continue
        slots = [b is not None for b in bits(i)]

        def expand(*v, slots=slots):
            vals, k = [], 0
            for used in slots:
                vals.append(v[k] if used else 0)
                k += used
            return operands(*vals, v[k], v[k + 1])

        s, di = cells.lut2(m, [*present, bipolar, neg],
                           lambda *v: 1 ^ expand(*v)[0] ^ expand(*v)[1],
                           lambda *v: expand(*v)[0])
        s_bits.append(s)
        di_bits.append(di)
    out, carry = [], Const(1, 1)
    for k in range(0, width, 4):
        pad = 4 - len(s_bits[k:k + 4])
        o, co = cells.carry4(m, carry, di_bits[k:k + 4] + [Const(0, 1)] * pad,
                             s_bits[k:k + 4] + [Const(0, 1)] * pad, cascade=k > 0)
        out += o[:4 - pad]
        carry = co[3]
    return Cat(*out)


def make_pe(family: str, lanes: int, acc_width: int, cells: str | None = None,
            column_count: bool = False) -> _PE:
    """A PE of ``family`` ("bitserial" or "bitparallel"); see `_PE` for the options."""
    cls = {"bitserial": BitSerialPE, "bitparallel": BitParallelPE}[check_family(family)]
    return cls(lanes, acc_width, cells, column_count)
