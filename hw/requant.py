"""`Requantizer`: `bitmill.numerics.requantize` for one value per cycle, fully pipelined.

``value = clamp(round_shift(acc*M + B, n), lo, hi)`` with ``(lo, hi)`` the range of
``out_bits`` (signed or unsigned), ``lo`` raised to 0 by ``relu``. The caller guarantees
``|acc*M + B| < 2^62`` (`bitmill.numerics.requant_fits`), so the sum is computed modulo 2^64.

Rounding uses ``round_shift(x, n) = ((2x >> n) + 1) >> 1`` (arithmetic shifts), equal to
``floor((x + 2^(n-1)) / 2^n)`` for ``n > 0`` and to ``x`` for ``n = 0``, so no half-step
operand enters the 64-bit sum. Stages (`LATENCY` = 10 registers from input to output):

1. input registers;
2. partial products of ``acc``'s 17-bit chunks by ``M`` (one 18x18 signed multiplier each);
3. carry-save reduction of the shifted partial products and ``B`` to two 64-bit words;
4. low 32-bit half of the sum, high half without its carry-in;
5. high half plus the carry: ``x``;
6. ``2x >> 8*(n // 8)``;  7. ``>> (n % 8)``;
8. saturation of the shifted value to 36 bits (outside it every result clamps the same way)
   and the output range from ``out_bits``, ``out_signed``, ``relu``;
9. ``(y + 1) >> 1``, and its comparisons with the range (made on ``y``);  10. clamp.

On ECP5-85F (speed 6) a 64-bit instance places and routes at 138 MHz: the slowest path is
the combinational 18x18 multiplier (yosys infers ``MULT18X18D`` without its pipeline
registers); every other stage is shorter.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill.numerics import MAX_BITS, MAX_SHIFT, MULT_BITS
from bitmill.timing import REQUANT_LATENCY

LATENCY = REQUANT_LATENCY   # input cycle t -> output valid in cycle t + LATENCY
SUM_BITS = 64            # |acc*M + B| < 2^62: the sum is exact modulo 2^64
VALUE_BITS = MAX_BITS + 1   # signed: holds -2^31 .. 2^32-1, every output range
CHUNK_BITS = 17          # unsigned low chunks of acc (18-bit signed multiplier operands)
TOP_CHUNK_MAX = 18       # the signed top chunk
SAT_BITS = MAX_BITS + 4  # shifted value saturated to this signed width before rounding


def acc_chunks(acc_bits: int) -> list[tuple[int, int]]:
    """``(offset, width)`` of each multiplier operand cut from ``acc``: unsigned 17-bit
    chunks from the bottom, the last (signed) one of at most 18 bits."""
    chunks, offset = [], 0
    while acc_bits - offset > TOP_CHUNK_MAX:
        chunks.append((offset, CHUNK_BITS))
        offset += CHUNK_BITS
    chunks.append((offset, acc_bits - offset))
    return chunks


def carry_save(operands: list, width: int) -> tuple:
    """Reduce the unsigned ``width``-bit operands to two whose sum is theirs (mod 2^width)
    with 3:2 compressors."""
    ops = list(operands)
    while len(ops) > 2:
        a, b, c = ops[:3]
        ops = ops[3:] + [(a ^ b ^ c)[:width], Cat(Const(0, 1), (a & b) | (a & c) | (b & c))[:width]]
    while len(ops) < 2:
        ops.append(Const(0, width))
    return ops[0], ops[1]


class Requantizer(wiring.Component):
    """Members (In): ``valid``, ``acc`` (signed ``acc_bits``), ``multiplier`` (signed 16),
    ``shift`` (0..62), ``bias`` (signed 64), ``out_bits`` (bits - 1), ``out_signed``,
    ``relu``, ``tag``; (Out) ``out_valid``, ``value`` (signed 33), ``out_tag``: the result
    of the input of cycle ``t`` in cycle ``t + latency``."""

    def __init__(self, acc_bits: int, tag_bits: int = 0):
        if isinstance(acc_bits, bool) or not isinstance(acc_bits, int) or not 8 <= acc_bits <= 64:
            raise ValueError(f"acc_bits must be an integer in 8..64, not {acc_bits!r}")
        if isinstance(tag_bits, bool) or not isinstance(tag_bits, int) or tag_bits < 0:
            raise ValueError(f"tag_bits must be a non-negative integer, not {tag_bits!r}")
        self.acc_bits = acc_bits
        self.tag_bits = tag_bits
        super().__init__({
            "valid": In(1), "acc": In(signed(acc_bits)), "multiplier": In(signed(MULT_BITS)),
            "shift": In(range(MAX_SHIFT + 1)), "bias": In(signed(SUM_BITS)),
            "out_bits": In(range(MAX_BITS)), "out_signed": In(1), "relu": In(1),
            "tag": In(tag_bits),
            "out_valid": Out(1), "value": Out(signed(VALUE_BITS)), "out_tag": Out(tag_bits),
        })

    @property
    def latency(self) -> int:
        """Cycles from an input to its ``value`` (`LATENCY`)."""
        return LATENCY

    def elaborate(self, platform) -> Module:
        m = Module()
        ctl = self._control(m)
        prod = self._products(m, ctl[1])
        x = self._sum(m, prod, ctl[1:5])
        y = self._shift(m, x, ctl[5:8])
        self._clamp(m, y, ctl[7:])
        m.d.comb += [self.out_valid.eq(ctl[LATENCY]["valid"]),
                     self.out_tag.eq(ctl[LATENCY]["tag"])]
        return m

    def _control(self, m: Module) -> list[dict]:
        """The per-stage copies of the fields that travel along (index = stage, 0 = inputs);
        ``acc``, ``multiplier`` and ``bias`` are registered once, at stage 1."""
        stages = [{"valid": self.valid, "tag": self.tag, "shift": self.shift,
                   "out_bits": self.out_bits, "out_signed": self.out_signed, "relu": self.relu,
                   "acc": self.acc, "multiplier": self.multiplier, "bias": self.bias}]
        for n in range(1, LATENCY + 1):
            keep = ("valid", "tag") + (("shift",) if n <= 6 else ()) + \
                   (("out_bits", "out_signed", "relu") if n <= 7 else ()) + \
                   (("acc", "multiplier", "bias") if n == 1 else ()) + (("bias",) if n == 2 else ())
            regs = {}
            for name in keep:
                src = stages[n - 1][name]
                reg = Signal.like(src, name=f"s{n}_{name}", reset_less=name != "valid")
                m.d.sync += reg.eq(src)
                regs[name] = reg
            stages.append(regs)
        return stages

    def _products(self, m: Module, s1: dict) -> list:
        """Stage 2: each chunk of ``acc`` times ``M``, registered (DSP outputs)."""
        chunks = acc_chunks(self.acc_bits)
        acc = s1["acc"].as_unsigned()
        prods = []
        for i, (offset, width) in enumerate(chunks):
            part = acc[offset:offset + width]
            operand = part.as_signed() if i == len(chunks) - 1 else Cat(part, Const(0, 1)).as_signed()
            prod = Signal(signed(len(operand) + MULT_BITS), name=f"s2_prod{i}", reset_less=True)
            m.d.sync += prod.eq(operand * s1["multiplier"])
            prods.append((offset, prod))
        return prods

    def _sum(self, m: Module, prods: list, ctl: list[dict]) -> Signal:
        """Stages 3-5: ``x = acc*M + B`` modulo 2^64 (carry-save, then two 32-bit halves)."""
        ops = []
        for offset, prod in prods:
            wide = Signal(unsigned(SUM_BITS), name=f"s2_term{offset}")
            m.d.comb += wide.eq(prod << offset)       # sign-extended, then cut to 64 bits
            ops.append(wide)
        ops.append(ctl[1]["bias"].as_unsigned())
        a, b = carry_save(ops, SUM_BITS)
        sum_a = Signal(SUM_BITS, name="s3_sum", reset_less=True)
        sum_b = Signal(SUM_BITS, name="s3_carry", reset_less=True)
        m.d.sync += [sum_a.eq(a), sum_b.eq(b)]
        half = SUM_BITS // 2
        low = Signal(half + 1, name="s4_low", reset_less=True)
        high = Signal(half, name="s4_high", reset_less=True)
        m.d.sync += [low.eq(sum_a[:half] + sum_b[:half]),
                     high.eq(sum_a[half:] + sum_b[half:])]
        x = Signal(signed(SUM_BITS), name="s5_x", reset_less=True)
        m.d.sync += x.eq(Cat(low[:half], (high + low[half])[:half]))
        return x

    def _shift(self, m: Module, x: Signal, ctl: list[dict]) -> Signal:
        """Stages 6-7: ``y = 2x >> n`` (arithmetic), coarse by 8s, then fine."""
        twice = Cat(Const(0, 1), x).as_signed()
        coarse = Signal(signed(SUM_BITS + 1), name="s6_coarse", reset_less=True)
        m.d.sync += coarse.eq(twice >> Cat(Const(0, 3), ctl[0]["shift"][3:]))
        y = Signal(signed(SUM_BITS + 1), name="s7_y", reset_less=True)
        m.d.sync += y.eq(coarse >> ctl[1]["shift"][:3])
        return y

    def _clamp(self, m: Module, y: Signal, ctl: list[dict]) -> None:
        """Stages 8-10: saturate, round, clamp to the output range."""
        top = y[SAT_BITS - 1:]
        inside = (top == 0) | (top == (1 << len(top)) - 1)
        limit = (1 << (SAT_BITS - 1)) - 1
        sat = Signal(signed(SAT_BITS), name="s8_sat", reset_less=True)
        m.d.sync += sat.eq(Mux(inside, y[:SAT_BITS].as_signed(),
                               Mux(y[-1], Const(-limit - 1, signed(SAT_BITS)), limit)))
        lo, hi, below_at, above_at = self._range(m, ctl[0])
        bound = [{name: Signal(signed(VALUE_BITS + 2), name=f"s{n}_{name}", reset_less=True)
                  for name in ("lo", "hi", "below_at", "above_at")} for n in (8, 9)]
        m.d.sync += [bound[0]["lo"].eq(lo), bound[0]["hi"].eq(hi),
                     bound[0]["below_at"].eq(below_at), bound[0]["above_at"].eq(above_at),
                     bound[1]["lo"].eq(bound[0]["lo"]), bound[1]["hi"].eq(bound[0]["hi"])]
        # round and compare in parallel: sat < 2lo => (sat+1)>>1 <= lo; sat > 2hi => > hi
        rounded = Signal(signed(SAT_BITS), name="s9_rounded", reset_less=True)
        below = Signal(name="s9_below", reset_less=True)
        above = Signal(name="s9_above", reset_less=True)
        m.d.sync += [rounded.eq((sat + 1) >> 1), below.eq(sat < bound[0]["below_at"]),
                     above.eq(sat > bound[0]["above_at"])]
        out = Signal(signed(VALUE_BITS), name="s10_value", reset_less=True)
        m.d.sync += out.eq(Mux(below, bound[1]["lo"], Mux(above, bound[1]["hi"], rounded)))
        m.d.comb += self.value.eq(out)

    @staticmethod
    def _range(m: Module, ctl: dict) -> tuple:
        """``(lo, hi)`` of the output (``numerics.value_range`` of ``out_bits`` signed or
        unsigned, ``lo`` raised to 0 by ``relu``) and ``2lo``, ``2hi``: a saturated value below
        ``2lo`` rounds to at most ``lo``, one above ``2hi`` to more than ``hi``."""
        bits_m1, sgn = ctl["out_bits"], ctl["out_signed"]
        ones = Signal(MAX_BITS, name="s7_ones")        # 2^(bits-1) - 1
        m.d.comb += ones.eq((Const(1, MAX_BITS + 1) << bits_m1) - 1)
        hi = Cat(Const(1, 1), ones)                     # 2^bits - 1
        hi = Mux(sgn, ones, hi)
        negative = sgn & ~ctl["relu"]
        lo = Mux(negative, ~Cat(ones, Const(0, 1)).as_signed(), 0)          # -2^(bits-1)
        return lo, hi, (lo * 2), Cat(Const(0, 1), hi)
