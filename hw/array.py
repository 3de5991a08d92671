"""R x C MAC array: weights enter along the rows, activations along the columns."""

from __future__ import annotations

from amaranth import Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bitmill.hw.cells import check_cells
from bitmill.hw.params import check_family, check_positive
from bitmill.hw.pe import Ctrl, make_pe, operand_layout
from bitmill.hw.popcount import Popcount
from bitmill.timing import pe_stages


class MacArray(wiring.Component):
    """``rows x cols`` PEs of one family. PE ``(r, c)`` reduces weight operand ``w[r]`` with
    activation operand ``a[c]`` into ``acc[r * cols + c]``.

    Members: ``w`` (In, ``rows`` operands), ``a`` (In, ``cols`` operands), ``ctrl`` (In, one
    control word per row, all equal: the driver keeps a register copy per row, so no control
    net fans out to every PE of the array), ``acc`` (Out, ``rows * cols`` accumulators),
    ``done`` (Out, pulse: results valid).

    ``cells``: popcount mapping of bit-serial PEs (`bitmill.hw.popcount.Popcount`).
    Bit-serial arrays compute ``popcount(a)`` of each column once and feed it to the column's
    PEs: primitive instances are not shared by synthesis the way identical plain logic is,
    and a simulator would otherwise evaluate ``rows`` copies of each column's count.
    """

    def __init__(self, rows: int, cols: int, lanes: int, family: str, acc_width: int,
                 cells: str | None = None):
        self._rows = check_positive("rows", rows, 256)
        self._cols = check_positive("cols", cols, 256)
        self._lanes = check_positive("lanes", lanes, 4096)
        self._family = check_family(family)
        self._acc_width = check_positive("acc_width", acc_width, 64)
        self._cells = check_cells(cells)
        operand = operand_layout(family, lanes)
        super().__init__({
            "w": In(data.ArrayLayout(operand, rows)),
            "a": In(data.ArrayLayout(operand, cols)),
            "ctrl": In(data.ArrayLayout(Ctrl, rows)),
            "acc": Out(data.ArrayLayout(signed(acc_width), rows * cols)),
            "done": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from a step at the inputs to its effect in ``acc`` (that of one PE)."""
        return pe_stages(self._family, self._lanes)

    def elaborate(self, platform) -> Module:
        m = Module()
        shared = self._family == "bitserial"
        counts = []
        for c in range(self._cols if shared else 0):
            m.submodules[f"count_a_{c}"] = count = Popcount(self._lanes, cells=self._cells)
            m.d.comb += count.x.eq(self.a[c])
            counts.append(count.sum)
        for r in range(self._rows):
            for c in range(self._cols):
                pe = make_pe(self._family, self._lanes, self._acc_width, self._cells, shared)
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += [pe.w.eq(self.w[r]), pe.a.eq(self.a[c]), pe.ctrl.eq(self.ctrl[r]),
                             self.acc[r * self._cols + c].eq(pe.acc)]
                if shared:
                    m.d.comb += pe.a_count.eq(counts[c])
                if r == 0 and c == 0:
                    m.d.comb += self.done.eq(pe.done)
        return m
