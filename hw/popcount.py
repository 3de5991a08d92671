"""Pipelined popcount of a bit-plane as a compressor tree, for LUT-based FPGAs.

``sum = popcount(x & mask)`` (``gated``) or ``popcount(x)``. The bits are kept in columns by
weight and compressed level by level, as plain logic that the LUT mapper packs whole:

* level 1 of a gated count: full adders over three lanes, ``x & mask`` folded in (a 6-input
  cone per output: one LUT6 each);
* then 6:3 counters (six bits of one weight to three bits of weights 1, 2, 4: three 6-input
  functions) and full adders for the remainders, until every column holds at most two bits;
* a final carry-propagate adder of those two rows (a few bits wide).

An adder tree of ``+`` instead maps every small sum onto a carry chain (one LUT per bit per
level); the counters need about one LUT per eliminated bit. Pipeline registers split the
levels into `bitmill.timing.adder_tree_stages` stages, the last one after the final adder,
so the latency is that of `bitmill.hw.tree.AdderTree`.

With ``cells`` ("xc7", or "model" to simulate the same netlist) the tree is instead
mapped by hand onto 7-series LUT6_2 / CARRY4 cells (`bitmill.hw.bitheap`), with the same
latency.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill.hw.bitheap import Compressor, register_columns
from bitmill.hw.cells import check_cells, make_cells
from bitmill.hw.params import check_positive
from bitmill.timing import adder_tree_stages

Columns = list[list[Value]]


def full_adder(a: Value, b: Value, c: Value) -> tuple[Value, Value]:
    """(sum, carry) of three bits."""
    return a ^ b ^ c, (a & b) | (a & c) | (b & c)


def counter_6_3(bits: list[Value]) -> tuple[Value, Value, Value]:
    """Bits of weights 1, 2, 4 of the count of six bits."""
    s1, c1 = full_adder(*bits[:3])
    s2, c2 = full_adder(*bits[3:])
    o1, o2 = full_adder(c1, c2, s1 & s2)
    return s1 ^ s2, o1, o2


def compress(columns: Columns, first: bool) -> Columns:
    """One level: 6:3 counters and full adders on every column of three or more bits
    (``first``: full adders only, each a 6-input cone over three gated lanes)."""
    out: Columns = [[] for _ in range(len(columns) + 3)]
    for weight, bits in enumerate(columns):
        rest = list(bits)
        if len(rest) < 3:
            out[weight] += rest
            continue
        while len(rest) >= 6 and not first:
            for k, bit in enumerate(counter_6_3(rest[:6])):
                out[weight + k].append(bit)
            rest = rest[6:]
        while len(rest) >= 3:
            s, c = full_adder(*rest[:3])
            out[weight].append(s)
            out[weight + 1].append(c)
            rest = rest[3:]
        out[weight] += rest
    while out and not out[-1]:
        out.pop()
    return out


def levels_needed(lanes: int, gated: bool) -> int:
    """Compression levels before the final adder (bits stand in as plain ints)."""
    columns: Columns = [[0] * lanes]
    n = 0
    while any(len(c) > 2 for c in columns):
        columns = compress(columns, first=n == 0 and gated)
        n += 1
    return n


class Popcount(wiring.Component):
    """Members: ``x`` (In, ``lanes`` bits), ``mask`` (In, ``lanes`` bits; used when
    ``gated``), ``sum`` (Out, registered, ``lanes.bit_length()`` bits).
    ``sum_attrs``: attributes of the output register (e.g. `bitmill.hw.pe.NOMERGE`).
    ``cells``: None (plain logic for any LUT mapper), "xc7" or "model" (see module doc)."""

    def __init__(self, lanes: int, gated: bool = False, sum_attrs: dict | None = None,
                 cells: str | None = None):
        self._lanes = check_positive("lanes", lanes, 4096)
        self._gated = bool(gated)
        self._sum_attrs = dict(sum_attrs or {})
        self._cells = check_cells(cells)
        super().__init__({"x": In(lanes), "mask": In(lanes),
                          "sum": Out(unsigned(lanes.bit_length()))})

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def latency(self) -> int:
        """Cycles from ``x``/``mask`` to ``sum``."""
        return adder_tree_stages(self._lanes)

    def _cuts(self, levels: int) -> set[int]:
        """Levels after which a register goes (``levels`` counts the final adder). The
        first register right after level 1: its inputs come over the array's long broadcast
        wires, and a gated count's 6-input full adders cannot be split by the mapper; the
        other stages split the remaining levels evenly."""
        stages = self.latency
        first = 1 if stages > 1 else 0
        rest, n = levels - first, stages - (1 if first else 0)
        return ({first} | {first + round(rest * s / n) for s in range(1, n)}) - {0}

    def elaborate(self, platform) -> Module:
        if self._cells is not None:
            return self._elaborate_cells()
        m = Module()
        x = self.x & self.mask if self._gated else self.x
        bits = Signal(self._lanes, name="lanes_in")
        m.d.comb += bits.eq(x)
        columns: Columns = [[bits[k] for k in range(self._lanes)]]
        levels = levels_needed(self._lanes, self._gated)
        cuts = self._cuts(levels + 1)
        for n in range(levels):
            columns = compress(columns, first=n == 0 and self._gated)
            if n + 1 in cuts:
                columns = register_columns(m, columns, f"c{n + 1}")
            else:
                columns = self._bind(m, columns, n + 1)
        assert all(len(col) <= 2 for col in columns)
        rows = [Cat(*(col[r] if r < len(col) else Const(0, 1) for col in columns))
                for r in range(2)]
        out = Signal(self.sum.shape(), name="sum_reg", attrs=self._sum_attrs, reset_less=True)
        m.d.sync += out.eq(rows[0] + rows[1])
        m.d.comb += self.sum.eq(out)
        return m

    def _elaborate_cells(self) -> Module:
        m = Module()
        out = Signal(self.sum.shape(), name="sum_reg", attrs=self._sum_attrs, reset_less=True)
        tree = Compressor(make_cells(self._cells), self._lanes, self._gated, self.latency)
        tree.build(m, self.x, self.mask if self._gated else None, out)
        m.d.comb += self.sum.eq(out)
        return m

    @staticmethod
    def _bind(m: Module, columns: Columns, level: int) -> Columns:
        """The bits of a level as wires: Amaranth repeats an expression at every use, and a
        counter's outputs are used by several counters of the next level."""
        out: Columns = []
        for weight, bits in enumerate(columns):
            wire = Signal(max(len(bits), 1), name=f"b{level}_w{weight}")
            if bits:
                m.d.comb += wire.eq(Cat(*bits))
            out.append([wire[k] for k in range(len(bits))])
        return out
