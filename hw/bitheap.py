"""Popcount compressor trees mapped by hand onto 7-series slices (`bitmill.hw.cells`).

The bits to add sit in columns by weight (a bit heap). Three kinds of counter reduce it:

* **AND chain** (first level of ``popcount(w & a)``): one dual-output LUT adds the products
  of two lanes and the parity bit of the LUT before it: ``O6`` is the new parity (passed
  on), ``O5`` the carry (weight 2). A chain of `CHAIN` LUTs takes ``2 * CHAIN`` lanes; each
  LUT but the first removes one bit, and every AND costs nothing extra.
* **(7;3) counter** on the carry chain: seven bits of one weight to three. Position 0 adds
  a bit ``b0`` (``DI``) to the parity of five more (``S = b0 ^ parity``, one LUT6); position
  1 adds ``[c >= 2] + [c >= 4]`` of their count ``c`` (one dual-output LUT, ``DI`` from
  ``O5``); the seventh bit enters as the chain's carry in. Two LUTs remove four bits.
* **full adder**: one dual-output LUT (three bits to two), for short columns.

When no column holds more than two bits, a carry-propagate adder (``+``) ends the tree.
Pipeline registers go between levels; `Compressor` places them.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal, Value

from bitmill.hw.cells import ModelCells

Columns = list[list[Value]]
CHAIN = 8           # LUTs per AND chain: its combinational depth in the first level


def and_chains(m: Module, cells: ModelCells, w: list[Value], a: list[Value]) -> Columns:
    """First level of ``popcount(w & a)``: chains of dual-output LUTs (see module doc)."""
    lanes = list(zip(w, a))
    columns: Columns = [[], []]
    for start in range(0, len(lanes), 2 * CHAIN):
        chain = lanes[start:start + 2 * CHAIN]
        if len(chain) == 1:
            columns[0].append(cells.lut(m, list(chain[0]), lambda w0, a0: w0 & a0))
            continue
        parity = None
        for j in range(0, len(chain), 2):
            group = chain[j:j + 2]
            chained = parity is not None
            inputs = [bit for lane in group for bit in lane] + ([parity] if chained else [])

            def total(*b, n=len(group), chained=chained) -> int:
                return sum(b[2 * i] & b[2 * i + 1] for i in range(n)) + (b[2 * n] if chained else 0)

            parity, carry = cells.lut2(m, inputs, lambda *b: total(*b) & 1,
                                       lambda *b: total(*b) >> 1)
            columns[1].append(carry)
        columns[0].append(parity)
    return columns


def counter_7_3(m: Module, cells: ModelCells, bits: list[Value]) -> list[Value]:
    """Bits of weights 1, 2, 4 of the count of four to seven bits (see module doc)."""
    if not 4 <= len(bits) <= 7:
        raise ValueError(f"a (7;3) counter takes 4..7 bits, not {len(bits)}")
    b0, rest = bits[0], bits[1:6]
    carry_in = bits[6] if len(bits) == 7 else Const(0, 1)
    s0 = cells.lut(m, [b0, *rest], lambda b, *r: b ^ (sum(r) & 1))
    s1, p1 = cells.lut2(m, rest, lambda *r: (sum(r) >= 2) ^ (sum(r) >= 4),
                        lambda *r: int(sum(r) >= 2))
    zero = Const(0, 1)
    o, co = cells.carry4(m, carry_in, [b0, p1, zero, zero], [s0, s1, zero, zero])
    return [o[0], o[1], co[1]]


def full_adder(m: Module, cells: ModelCells, bits: list[Value]) -> list[Value]:
    """Bits of weights 1, 2 of the sum of three bits: one dual-output LUT."""
    s, c = cells.lut2(m, bits, lambda *b: sum(b) & 1, lambda *b: sum(b) >> 1)
    return [s, c]


def compress(m: Module, cells: ModelCells, columns: Columns) -> Columns:
    """One level: (7;3) counters on runs of six or seven bits, a counter or full adder on
    the rest of a column while it holds three or more bits."""
    out: Columns = [[] for _ in range(len(columns) + 3)]
    for weight, bits in enumerate(columns):
        rest = list(bits)
        if len(rest) <= 2:
            out[weight] += rest
            continue
        while len(rest) >= 6 or len(rest) in (4, 5):
            take, rest = rest[:7], rest[7:]
            for k, bit in enumerate(counter_7_3(m, cells, take)):
                out[weight + k].append(bit)
        if len(rest) == 3:
            s, c = full_adder(m, cells, rest)
            out[weight].append(s)
            out[weight + 1].append(c)
            rest = []
        out[weight] += rest
    while out and not out[-1]:
        out.pop()
    return out


def height(columns: Columns) -> int:
    return max((len(c) for c in columns), default=0)


class _DryCells(ModelCells):
    """Builds nothing: `levels` runs the compression on placeholders to count levels."""

    def lut(self, m, inputs, fn):
        return 0

    def lut2(self, m, inputs, fn6, fn5):
        return 0, 0

    def carry4(self, m, ci, di, s):
        return [0] * 4, [0] * 4


def levels(lanes: int, gated: bool) -> int:
    """Compression levels after the first (the AND chains when ``gated``, else the bits)
    until no column holds more than two bits."""
    dry = _DryCells()
    columns = and_chains(None, dry, [0] * lanes, [0] * lanes) if gated else [[0] * lanes]
    n = 0
    while height(columns) > 2:
        columns = compress(None, dry, columns)
        n += 1
    return n


def register_after(lanes: int, gated: bool, stages: int) -> set[int]:
    """Levels after which a pipeline register goes, ``stages - 1`` of them (the final adder
    has the last). Level 0 is the AND chains (``gated``) or nothing; 1.. are the
    compression levels. A gated count is registered right after its chains; the other
    registers split the remaining levels evenly."""
    n = levels(lanes, gated)
    cuts: set[int] = set()
    left = stages - 1
    if gated and left > 0:
        cuts.add(0)
        left -= 1
    span = n + 1                    # levels 1..n and the final adder
    for s in range(1, left + 1):
        cuts.add(round(span * s / (left + 1)))
    return cuts


class Compressor:
    """A bit-heap popcount of ``lanes`` bits (``gated``: of ``w & a``) with ``stages``
    pipeline registers, the last after the final adder. Extra registers (a tree with
    fewer levels than stages) delay the result."""

    def __init__(self, cells: ModelCells, lanes: int, gated: bool, stages: int):
        if lanes < 1 or stages < 1:
            raise ValueError(f"lanes and stages must be positive, not {lanes}, {stages}")
        self.cells, self.lanes, self.gated, self.stages = cells, lanes, gated, stages

    def build(self, m: Module, w: Value, a: Value | None, out: Signal) -> None:
        """Drive ``out`` (a reset-less register) with ``popcount(w & a)`` (``gated``) or
        ``popcount(w)``, ``stages`` cycles after the inputs."""
        cuts = register_after(self.lanes, self.gated, self.stages)
        k = range(self.lanes)
        if self.gated:
            columns = and_chains(m, self.cells, [w[i] for i in k], [a[i] for i in k])
        else:
            columns = [[w[i] for i in k]]
        regs = 0
        level = 0
        while True:
            if level in cuts:
                columns = register_columns(m, columns, f"c{level}")
                regs += 1
            if height(columns) <= 2:
                break
            columns = compress(m, self.cells, columns)
            level += 1
        rows = [Cat(*(col[r] if r < len(col) else Const(0, 1) for col in columns))
                for r in range(2)]
        total = Signal(len(out), name="total")
        m.d.comb += total.eq(rows[0] + rows[1])
        value = total
        for n in range(self.stages - 1 - regs):
            delay = Signal(len(out), name=f"total_d{n}", reset_less=True)
            m.d.sync += delay.eq(value)
            value = delay
        m.d.sync += out.eq(value)


def register_columns(m: Module, columns: Columns, name: str) -> Columns:
    """The bits of ``columns`` through one reset-less register per column."""
    out: Columns = []
    for weight, bits in enumerate(columns):
        reg = Signal(max(len(bits), 1), name=f"{name}_w{weight}", reset_less=True)
        if bits:
            m.d.sync += reg.eq(Cat(*bits))
        out.append([reg[i] for i in range(len(bits))])
    return out
