"""LUT and carry-chain cells of Xilinx 7-series slices, as primitives or as models.

A compressor tree written as plain logic is re-mapped by the LUT mapper, which does not
know the dual-output LUT (``LUT6_2``: two functions of five shared inputs in one LUT site)
nor how a counter can use the carry chain; it spends about twice the LUTs of a
hand-mapped tree. `bitmill.hw.bitheap` therefore builds its trees from these cells:

* ``lut(inputs, fn)``: one function of up to six inputs (``LUT1`` .. ``LUT6``);
* ``lut2(inputs, fn6, fn5)``: two functions of up to five shared inputs, one ``LUT6_2``
  (``I5`` tied high, as in dual-output mode);
* ``carry4(ci, di, s)``: ``CARRY4``: ``O[i] = S[i] ^ C[i]``, ``C[i+1] = S[i] ? C[i] : DI[i]``.

`Xc7Cells` instantiates the primitives (for ``synth_xilinx``); `ModelCells` builds the same
functions from their truth tables as Amaranth logic (simulation, other targets). Both take
the truth table from one place (`lut_init`), so simulating the model checks every INIT.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from amaranth import Cat, Const, Instance, Module, Mux, Signal, Value

LutFn = Callable[..., int]      # bits of the inputs (I0 first) -> output bit


def lut_init(fn: LutFn, n_inputs: int) -> int:
    """Truth table of ``fn`` over ``n_inputs`` inputs: bit ``i`` is ``fn`` of the bits of
    ``i`` (input 0 = least significant)."""
    if not 0 <= n_inputs <= 6:
        raise ValueError(f"a LUT has 0..6 inputs, not {n_inputs}")
    init = 0
    for i in range(1 << n_inputs):
        if fn(*((i >> k) & 1 for k in range(n_inputs))) & 1:
            init |= 1 << i
    return init


def lut6_2_init(fn6: LutFn, fn5: LutFn, n_inputs: int) -> int:
    """``INIT`` of a ``LUT6_2`` in dual-output mode (``I5`` = 1): ``O6`` reads bits 32..63,
    ``O5`` bits 0..31, both indexed by ``I0..I4``."""
    if not 0 <= n_inputs <= 5:
        raise ValueError(f"a dual-output LUT has 0..5 inputs, not {n_inputs}")
    hi = lut_init(lambda *b: fn6(*b[:n_inputs]), 5)
    lo = lut_init(lambda *b: fn5(*b[:n_inputs]), 5)
    return (hi << 32) | lo


class ModelCells:
    """The cells as Amaranth logic: a LUT is its truth table indexed by its inputs.

    The public methods compute the truth tables, count the cells and make the output
    signals; ``_place_*`` builds one cell, and is all that `Xc7Cells` replaces."""

    def __init__(self):
        self.count = {"lut": 0, "carry": 0}
        self._n = 0

    def _signal(self, width: int, prefix: str) -> Signal:
        self._n += 1
        return Signal(width, name=f"{prefix}{self._n}")

    def lut(self, m: Module, inputs: Sequence[Value], fn: LutFn) -> Value:
        """One function of one to six inputs."""
        if not inputs:
            raise ValueError("a LUT cell needs at least one input")
        init = lut_init(fn, len(inputs))
        self.count["lut"] += 1
        out = self._signal(1, "lut")
        self._place_lut(m, list(inputs), init, out)
        return out

    def lut2(self, m: Module, inputs: Sequence[Value], fn6: LutFn, fn5: LutFn
             ) -> tuple[Value, Value]:
        """Two functions of up to five shared inputs (``O6``, ``O5``)."""
        init = lut6_2_init(fn6, fn5, len(inputs))
        self.count["lut"] += 1
        o6, o5 = self._signal(1, "o6_"), self._signal(1, "o5_")
        padded = list(inputs) + [Const(0, 1)] * (5 - len(inputs))
        self._place_lut2(m, padded, init, o6, o5)
        return o6, o5

    def carry4(self, m: Module, ci: Value, di: Sequence[Value], s: Sequence[Value],
               cascade: bool = False) -> tuple[list[Value], list[Value]]:
        """``(O[0..3], CO[0..3])`` of a carry chain of four positions; the carry in ``ci``
        enters through ``CYINIT``, or through ``CI`` when it is the ``CO[3]`` of the
        ``CARRY4`` below (``cascade``)."""
        self.count["carry"] += 1
        o, co = self._signal(4, "xor"), self._signal(4, "cy")
        self._place_carry4(m, ci, list(di), list(s), cascade, o, co)
        return [o[i] for i in range(4)], [co[i] for i in range(4)]

    def _place_lut(self, m: Module, inputs: list[Value], init: int, out: Signal) -> None:
        m.d.comb += out.eq(Const(init, 1 << len(inputs)).bit_select(Cat(*inputs), 1))

    def _place_lut2(self, m: Module, inputs: list[Value], init: int, o6: Signal,
                    o5: Signal) -> None:
        index = Cat(*inputs)
        m.d.comb += [o6.eq(Const(init >> 32, 32).bit_select(index, 1)),
                     o5.eq(Const(init & 0xFFFF_FFFF, 32).bit_select(index, 1))]

    def _place_carry4(self, m: Module, ci: Value, di: list[Value], s: list[Value],
                      cascade: bool, o: Signal, co: Signal) -> None:
        c = ci                              # CI and CYINIT are the same carry in
        for i in range(4):
            m.d.comb += [o[i].eq(s[i] ^ c), co[i].eq(Mux(s[i], c, di[i]))]
            c = co[i]


class Xc7Cells(ModelCells):
    """The cells as 7-series primitive instances, for ``synth_xilinx``."""

    def _place_lut(self, m: Module, inputs: list[Value], init: int, out: Signal) -> None:
        ports = {f"i_I{k}": v for k, v in enumerate(inputs)}
        m.submodules[f"lut{self._n}"] = Instance(
            f"LUT{len(inputs)}", p_INIT=Const(init, 1 << len(inputs)), o_O=out, **ports)

    def _place_lut2(self, m: Module, inputs: list[Value], init: int, o6: Signal,
                    o5: Signal) -> None:
        ports = {f"i_I{k}": v for k, v in enumerate(inputs)}
        m.submodules[f"lut6_2_{self._n}"] = Instance(
            "LUT6_2", p_INIT=Const(init, 64), i_I5=Const(1, 1), o_O6=o6, o_O5=o5, **ports)

    def _place_carry4(self, m: Module, ci: Value, di: list[Value], s: list[Value],
                      cascade: bool, o: Signal, co: Signal) -> None:
        zero = Const(0, 1)
        m.submodules[f"carry4_{self._n}"] = Instance(
            "CARRY4", i_CI=ci if cascade else zero, i_CYINIT=zero if cascade else ci,
            i_DI=Cat(*di), i_S=Cat(*s), o_O=o, o_CO=co)


CELL_STYLES = ("model", "xc7")


def check_cells(cells: str | None) -> str | None:
    """``cells`` if it is None or a cell style, else ValueError naming the choices."""
    if cells is not None and cells not in CELL_STYLES:
        raise ValueError(f"cells must be None or one of {', '.join(CELL_STYLES)}, not {cells!r}")
    return cells


def make_cells(style: str) -> ModelCells:
    """Cells of ``style``: "model" (Amaranth logic) or "xc7" (primitives)."""
    if style == "model":
        return ModelCells()
    if style == "xc7":
        return Xc7Cells()
    raise ValueError(f"cell style must be 'model' or 'xc7', not {style!r}")
