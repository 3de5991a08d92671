"""Activation staging: im2col columns of packed NHWC rows in an activation buffer slot -> the
tile engine's activation buffer words (`bitmill.hw.staging`). Cycles:
`bitmill.timing.act_stage_cycles`.

Column ``j`` is output pixel ``p + j`` at ``(y, x) = divmod(p + j, out_w)``; its kernel row
``ky`` is the run of ``kernel*in_c`` codes of input row ``y*stride - pad + ky`` (slot row
``- band_row0``) from input column ``x*stride - pad``. Codes outside the image and columns
beyond the valid count are zero, read in the same cycles as real ones. ``(y, x)`` of the first
pixel comes from a restoring divider (`bitmill.timing.act_divide_cycles`).
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bitmill.config import AccelConfig
from bitmill.hw.arith import shift_add
from bitmill.hw.staging import busy_flag, buffer_words, core_for, lowest_bit, setup_counter
from bitmill.isa import MAX_KERNEL, MAX_PAD, MAX_STRIDE, Buffer
from bitmill.numerics import Encoding
from bitmill.precision import MAX_RUNTIME_BITS
from bitmill.timing import ACT_SETUP_EXTRA, act_divide_cycles, act_stage_cycles


def act_command_layout(cfg: AccelConfig) -> data.StructLayout:
    """An activation staging command: slot base word, first pixel ``p``, valid columns
    (<= C), the kernel rows ``ky0 .. ky0+rows`` of the columns (a partial-sum pass; all
    ``kernel`` rows otherwise), and the layer registers it reads."""
    px = cfg.max_feature_size
    return data.StructLayout({
        "base": range(buffer_words(cfg, Buffer.ACT)), "p": range(px * px + 1),
        "cols": range(cfg.cols + 1), "ky0": range(MAX_KERNEL), "rows": range(MAX_KERNEL + 1),
        "kernel": range(MAX_KERNEL + 1),
        "stride": range(MAX_STRIDE + 1), "pad": range(MAX_PAD + 1),
        "in_h": range(px + 1), "in_w": range(px + 1), "in_c": range(cfg.max_channels + 1),
        "out_w": range(px + 1), "band_row0": range(px + 1),
        "a_bits": range(MAX_RUNTIME_BITS + 1), "a_enc": Encoding})


def _clamp(value, top):
    """``value`` clamped to ``[0, top]``."""
    return Mux(value < 0, 0, Mux(value > top, top, value))


class ActStager(wiring.Component):
    """Members: ``start`` (In, one cycle) with ``cmd`` (In, `act_command_layout`, read in the
    start cycle), ``read_addr`` / ``read_data`` (the activation buffer's synchronous read
    port), ``load`` (Out: `TileEngine.load` writes, target 1), ``finish`` (Out: last busy
    cycle), ``busy`` (Out)."""

    def __init__(self, cfg: AccelConfig):
        if not isinstance(cfg, AccelConfig):
            raise ValueError(f"cfg must be an AccelConfig, not {cfg!r}")
        self.cfg = cfg
        self._core = core = core_for(cfg, Buffer.ACT, 1, cfg.cols)
        super().__init__({
            "start": In(1), "cmd": In(act_command_layout(cfg)),
            "read_addr": Out(range(core.buffer_words)), "read_data": In(core.word_bits),
            "load": Out(core.load.signature), "finish": Out(1), "busy": Out(1),
        })

    def cycles(self, kernel: int, in_c: int, in_w: int, a_bits: int, rows: int | None = None) -> int:
        """Cycles from ``start`` to the cycle after ``finish`` (`timing.act_stage_cycles`)."""
        return act_stage_cycles(self.cfg, kernel, in_c, in_w, a_bits, rows)

    @property
    def setup_cycles(self) -> int:
        """Cycles from ``start`` to the core's start: the divider, then `ACT_SETUP_EXTRA`."""
        return act_divide_cycles(self.cfg) + ACT_SETUP_EXTRA

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.core = core = self._core
        cmd = Signal.like(self.cmd)
        with m.If(self.start):
            m.d.sync += cmd.eq(self.cmd)
        plan = self._plan(m, cmd)
        first = self._first_pixel(m, cmd, plan)
        self._walker(m, cmd, plan, first)
        m.d.comb += [core.start.eq(setup_counter(m, self.start, self.setup_cycles)),
                     self.read_addr.eq(core.read_addr), core.read_data.eq(self.read_data),
                     self.finish.eq(core.finish),
                     self.busy.eq(busy_flag(m, self.start, core.finish))]
        wiring.connect(m, wiring.flipped(self.load), core.load)
        return m

    def _plan(self, m: Module, cmd) -> dict:
        """Registered per-layer constants, settled five cycles after start."""
        core, K, W = self._core, self.cfg.lanes, self._core.word_bits
        a, lw, ab = cmd.a_bits, (W - 1).bit_length(), core.addr_bits
        p = {n: Signal(ab, name=n) for n in ("run", "row_codes", "code_bits", "pitch", "step",
                                              "pad_bits", "k_total", "piece", "row_step", "piece_bits")}
        times = [Signal(range(MAX_KERNEL * self.cfg.max_channels + 1), name=f"in_c_x{n}")
                 for n in range(MAX_KERNEL + 1)]
        m.d.sync += [t.eq(shift_add(cmd.in_c, Const(n))) for n, t in enumerate(times)]
        m.d.sync += [p["run"].eq(shift_add(cmd.in_c, cmd.kernel)), p["row_codes"].eq(cmd.in_w * cmd.in_c),
                     p["code_bits"].eq(shift_add(cmd.in_c, a)),
                     p["pitch"].eq((shift_add(p["row_codes"], a) + 7) & ~7),
                     p["step"].eq(shift_add(p["code_bits"], cmd.stride)),
                     p["pad_bits"].eq(shift_add(p["code_bits"], cmd.pad)),
                     p["k_total"].eq(shift_add(p["run"], cmd.rows)),
                     p["piece"].eq(Mux(p["run"] < K, p["run"], K)),
                     p["row_step"].eq(shift_add(p["pitch"], cmd.stride)),
                     p["piece_bits"].eq(shift_add(p["piece"], a))]
        align = lowest_bit(m, p["pitch"] | p["code_bits"] | (K * a) | W, lw + 1)
        words, pieces = Signal.like(core.plan.words), Signal(range(MAX_KERNEL + 1))
        m.d.sync += [words.eq((2 * W - 1 - align + p["piece_bits"]) >> lw),
                     pieces.eq(self._pieces(m, cmd.rows, p["run"]))]
        m.d.comb += [core.plan.bits.eq(a), core.plan.enc.eq(cmd.a_enc),
                     core.plan.k_total.eq(p["k_total"]), core.plan.run.eq(p["run"]),
                     core.plan.run_pitch.eq(p["pitch"]), core.plan.words.eq(words),
                     core.plan.pieces.eq(pieces)]
        p["in_c_times"] = Array(times)
        return p

    def _pieces(self, m: Module, rows, run):
        """`bitmill.timing.act_pieces`: 1 if K divides the run, else
        ``min(rows, 1 + ceil((K-1)/run))`` (counting ``m*run < K-1`` for m < MAX_KERNEL); the
        comparisons registered first (the plan settles long before the core starts)."""
        K = self.cfg.lanes
        divides, below = Signal(name="run_divides"), Signal(MAX_KERNEL - 1, name="run_multiples_below")
        m.d.sync += [divides.eq((run & (K - 1)) == 0 if K & (K - 1) == 0 else (run % K) == 0),
                     below.eq(Cat(*[k * run < K - 1 for k in range(MAX_KERNEL - 1)]))]
        spans = 1 + sum(below[k].as_unsigned() for k in range(MAX_KERNEL - 1))
        return Mux(divides, 1, Mux(spans < rows, spans, rows))

    def _first_pixel(self, m: Module, cmd, plan: dict) -> dict:
        """``(y, x) = divmod(p, out_w)`` by restoring division, one quotient bit a cycle;
        then the input offsets and the bit address of the first column's first run."""
        q_bits = act_divide_cycles(self.cfg)
        core, W = self._core, self._core.word_bits
        rem = Signal(len(self.cmd.p), name="div_rem")
        div = Signal(len(self.cmd.out_w) + q_bits, name="div_step")
        quo = Signal(q_bits, name="div_quo")
        left = Signal(range(q_bits + 1), name="div_left")
        first_step = Signal(name="div_first")
        # the first step divides the registered command's pixel: nothing of the GEMM unit's
        # command logic reaches the divider in the start cycle
        dividend = Mux(first_step, cmd.p, rem)
        # the quotient needs no clearing at start: its ``q_bits`` steps shift every old bit out
        # (no reset from the control's start decision into its flip-flops)
        with m.If(self.start):
            m.d.sync += [div.eq(self.cmd.out_w << (q_bits - 1)), left.eq(q_bits), first_step.eq(1)]
        with m.Elif(left != 0):
            m.d.sync += [left.eq(left - 1), first_step.eq(0)]
            less = Signal(signed(max(len(rem), len(div)) + 1), name="div_less")
            m.d.comb += less.eq(dividend - div)
            fits = ~less[-1]
            m.d.sync += [rem.eq(Mux(fits, less, dividend)), div.eq(div >> 1),
                         quo.eq((quo << 1) | fits)]
        ab = core.addr_bits
        f = {"x": Signal(len(cmd.out_w), name="x0"), "ix": Signal(signed(ab), name="ix0"),
             "iy": Signal(signed(ab), name="iy0"), "row_bit": Signal(signed(ab), name="row_bit0"),
             "col_bit": Signal(signed(ab), name="col_bit0")}
        # the command's constant terms registered first, so that each product below has
        # one adder after it: iy - band_row0 = quo * stride + (ky0 - pad - band_row0)
        iy_off, band_off = Signal(signed(ab), name="iy_offset"), Signal(signed(ab), name="band_offset")
        base_bit = Signal(ab, name="base_bit")
        iy_band = Signal(signed(ab), name="iy0_in_band")
        m.d.sync += [iy_off.eq(cmd.ky0 - cmd.pad), band_off.eq(cmd.ky0 - cmd.pad - cmd.band_row0),
                     base_bit.eq(cmd.base * W)]
        m.d.sync += [f["x"].eq(rem), f["ix"].eq(shift_add(rem, cmd.stride) - cmd.pad),
                     f["iy"].eq(shift_add(quo, cmd.stride) + iy_off),
                     iy_band.eq(shift_add(quo, cmd.stride) + band_off),
                     f["row_bit"].eq(base_bit + plan["pitch"] * iy_band),
                     f["col_bit"].eq(f["ix"] * plan["code_bits"])]
        return f

    def _walker(self, m: Module, cmd, plan: dict, first: dict) -> None:
        """Column ``j+1`` is the next pixel: one stride right, or the next output row."""
        core, ab = self._core, self._core.addr_bits
        x = Signal.like(first["x"], name="x")
        row_bit, col_bit = (Signal(signed(ab), name=n) for n in ("row_bit", "col_bit"))
        # the column's input offsets as the distances the clamps take, kept in registers (no
        # subtraction before the clamps): ``-ix``, ``in_w - ix``, ``-iy``, ``in_h - iy``
        left, right, above, below = (Signal(signed(ab + 1), name=n) for n in
                                     ("ix_neg", "ix_to_width", "iy_neg", "iy_to_height"))
        j = Signal(range(self.cfg.cols + 1), name="col")
        # the column's bit address (row_bit + col_bit) kept in its own register, so that the
        # core's read address starts at a register
        bit, wrap_step = Signal(signed(ab), name="col_start_bit"), Signal(signed(ab), name="wrap_step")
        m.d.sync += wrap_step.eq(plan["row_step"] - plan["pad_bits"])
        with m.If(core.vec_first):
            m.d.sync += [x.eq(first["x"]), left.eq(-first["ix"]), right.eq(cmd.in_w - first["ix"]),
                         above.eq(-first["iy"]), below.eq(cmd.in_h - first["iy"]), j.eq(0),
                         row_bit.eq(first["row_bit"]), col_bit.eq(first["col_bit"]),
                         bit.eq(first["row_bit"] + first["col_bit"])]
        with m.Elif(core.vec_next):
            m.d.sync += j.eq(j + 1)
            with m.If(x == cmd.out_w - 1):
                m.d.sync += [x.eq(0), left.eq(cmd.pad), right.eq(cmd.in_w + cmd.pad),
                             above.eq(above - cmd.stride), below.eq(below - cmd.stride),
                             row_bit.eq(row_bit + plan["row_step"]), col_bit.eq(-plan["pad_bits"]),
                             bit.eq(row_bit + wrap_step)]
            with m.Else():
                m.d.sync += [x.eq(x + 1), left.eq(left - cmd.stride), right.eq(right - cmd.stride),
                             col_bit.eq(col_bit + plan["step"]),
                             bit.eq(bit + plan["step"])]
        times, k, h = plan["in_c_times"], cmd.kernel, cmd.rows
        m.d.comb += [core.vec.bit.eq(bit),
                     core.vec.lo.eq(times[_clamp(left, k)]), core.vec.hi.eq(times[_clamp(right, k)]),
                     core.vec.ky_lo.eq(_clamp(above, h)), core.vec.ky_hi.eq(_clamp(below, h)),
                     core.vec.ok.eq(j < cmd.cols)]
