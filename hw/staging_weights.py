"""Weight staging: rows of packed weight codes in a weight buffer slot -> the tile engine's
weight buffer words (`bitmill.hw.staging`). Cycles: `bitmill.timing.weight_stage_cycles`."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bitmill.config import AccelConfig
from bitmill.hw.arith import shift_add
from bitmill.hw.engine import engine_chunks
from bitmill.hw.staging import (busy_flag, buffer_words, core_for, lowest_bit, setup_counter)
from bitmill.isa import Buffer
from bitmill.numerics import Encoding
from bitmill.precision import MAX_RUNTIME_BITS
from bitmill.timing import WEIGHT_SETUP_CYCLES, weight_stage_cycles


def weight_command_layout(cfg: AccelConfig) -> data.StructLayout:
    """A weight staging command: slot base word, first weight row in the slot (``w_row`` plus
    the channel offset), valid rows (<= R; rows beyond are zero), codes per row ``row_k``,
    the staged codes ``k0 .. k0+k_total`` of each row (a partial-sum pass), precision."""
    max_k = engine_chunks(cfg) * cfg.lanes
    return data.StructLayout({
        "base": range(buffer_words(cfg, Buffer.WEIGHT)), "row": range(2 * cfg.max_channels + 1),
        "rows": range(cfg.rows + 1), "k_total": range(max_k + 1),
        "row_k": range(cfg.k_passes * max_k + 1), "k0": range(cfg.k_passes * max_k + 1),
        "w_bits": range(MAX_RUNTIME_BITS + 1), "w_enc": Encoding})


class WeightStager(wiring.Component):
    """Members: ``start`` (In, one cycle) with ``cmd`` (In, `weight_command_layout`, read in
    the start cycle), ``read_addr`` / ``read_data`` (the weight buffer's synchronous read port),
    ``load`` (Out: `TileEngine.load` writes, target 0), ``finish`` (Out: last busy cycle),
    ``busy`` (Out)."""

    def __init__(self, cfg: AccelConfig):
        if not isinstance(cfg, AccelConfig):
            raise ValueError(f"cfg must be an AccelConfig, not {cfg!r}")
        self.cfg = cfg
        self._core = core_for(cfg, Buffer.WEIGHT, 0, cfg.rows)
        core = self._core
        super().__init__({
            "start": In(1), "cmd": In(weight_command_layout(cfg)),
            "read_addr": Out(range(core.buffer_words)), "read_data": In(core.word_bits),
            "load": Out(core.load.signature),
            "finish": Out(1), "busy": Out(1),
        })

    def cycles(self, k_total: int, w_bits: int, row_k: int | None = None, k0: int = 0) -> int:
        """Cycles from ``start`` to the cycle after ``finish`` (`timing.weight_stage_cycles`)."""
        return weight_stage_cycles(self.cfg, k_total, w_bits, row_k, k0)

    @property
    def setup_cycles(self) -> int:
        """Cycles from ``start`` to the core's start (the first read follows it)."""
        return WEIGHT_SETUP_CYCLES

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.core = core = self._core
        cmd = Signal.like(self.cmd)
        with m.If(self.start):
            m.d.sync += cmd.eq(self.cmd)
        plan = self._plan(m, cmd, self.cmd)
        self._walker(m, cmd, plan)
        m.d.comb += [core.start.eq(setup_counter(m, self.start, WEIGHT_SETUP_CYCLES)),
                     self.read_addr.eq(core.read_addr), core.read_data.eq(self.read_data),
                     self.finish.eq(core.finish),
                     self.busy.eq(busy_flag(m, self.start, core.finish))]
        wiring.connect(m, wiring.flipped(self.load), core.load)
        return m

    def _plan(self, m: Module, cmd, given) -> dict:
        """Registered per-command constants (settled `WEIGHT_SETUP_CYCLES` after start): the
        row's bits from the command as it is given (``given``, in the start cycle), the rest
        from its register ``cmd``; the first row's bit address as a product and a sum
        registered apart (the product of the row and the pitch, then the sum)."""
        core, K, W = self._core, self.cfg.lanes, self._core.word_bits
        b = cmd.w_bits
        lw = (W - 1).bit_length()
        row_bits, pitch, piece_bits, k0_bits = (Signal(core.addr_bits, name=n) for n in
                                                ("row_bits", "pitch_bits", "piece_bits", "k0_bits"))
        rows_off, origin = (Signal(core.addr_bits, name=n) for n in ("row_offset_bits", "origin_bits"))
        first = Signal(signed(core.addr_bits), name="first_row_bit")
        with m.If(self.start):
            m.d.sync += row_bits.eq(shift_add(given.row_k, given.w_bits))
        m.d.sync += [k0_bits.eq(shift_add(cmd.k0, b)), pitch.eq((row_bits + 7) & ~7),
                     piece_bits.eq(shift_add(Mux(cmd.k_total < K, cmd.k_total, K), b)),
                     rows_off.eq(cmd.row * pitch), origin.eq(cmd.base * W + k0_bits),
                     first.eq(rows_off + origin)]
        align = lowest_bit(m, pitch | (K * b) | k0_bits | W, lw + 1)
        words = Signal.like(core.plan.words)
        m.d.sync += words.eq((2 * W - 1 - align + piece_bits) >> lw)
        m.d.comb += [core.plan.bits.eq(b), core.plan.enc.eq(cmd.w_enc),
                     core.plan.k_total.eq(cmd.k_total), core.plan.run.eq(cmd.k_total),
                     core.plan.run_pitch.eq(0), core.plan.words.eq(words), core.plan.pieces.eq(1)]
        return {"pitch": pitch, "first": first}

    def _walker(self, m: Module, cmd, plan: dict) -> None:
        """Row ``r`` of the tile starts ``r`` pitches after the first row."""
        core = self._core
        bit = Signal(signed(core.addr_bits), name="row_bit")
        r = Signal(range(self.cfg.rows + 1), name="row")
        with m.If(core.vec_first):
            m.d.sync += [bit.eq(plan["first"]), r.eq(0)]
        with m.Elif(core.vec_next):
            m.d.sync += [bit.eq(bit + plan["pitch"]), r.eq(r + 1)]
        m.d.comb += [core.vec.bit.eq(bit), core.vec.lo.eq(0), core.vec.hi.eq(cmd.k_total),
                     core.vec.ky_lo.eq(0), core.vec.ky_hi.eq(1), core.vec.ok.eq(r < cmd.rows)]
