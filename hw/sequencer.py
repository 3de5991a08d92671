"""Tile sequencer: turns one tile command into the step stream of buffer addresses and PE
control words.

Bit-serial order, for each significance ``s`` from ``(w_bits-1)+(a_bits-1)`` down to 0, each
plane pair ``(i, j)`` with ``i + j = s`` and each K-lane chunk ``c``. The first step of every
lower significance sets ``shift`` (the accumulator doubles), so the result is
``sum_(i,j) 2^(i+j) * (+/-) term(i, j)`` with only a 1-bit shift. A bit-parallel tile is one
step per chunk. Buffer address of a step: ``plane * chunk_slots + chunk``.

A command accepted at clock edge 0 presents the buffer addresses of step ``n`` after edge
``n`` (decoded from the step counters, so the buffers read them at edge ``n + 1``) and its
control word after edge ``n + 1``, registered beside the buffer read.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from bitmill.hw.params import check_family, check_positive
from bitmill.hw.pe import Ctrl
from bitmill.numerics import Encoding
from bitmill.precision import MAX_RUNTIME_BITS

PLANE_BITS = (MAX_RUNTIME_BITS - 1).bit_length()     # a bit-width minus one, or a plane index


def command_layout(max_chunks: int, passes: int = 1) -> data.StructLayout:
    """One tile command. Widths are stored minus one, so every encodable value is legal. With
    ``passes > 1`` also ``w_pass``: the weight region of the partial-sum pass."""
    fields = {
        "w_bits_m1": PLANE_BITS, "a_bits_m1": PLANE_BITS,     # bit-widths 1..MAX_RUNTIME_BITS
        "w_enc": Encoding,
        "a_signed": 1,                             # activations signed (MSB plane negative)
        "last_chunk": range(max_chunks),           # ceil(K_total / K) - 1
    }
    if passes > 1:
        fields["w_pass"] = range(passes)
    return data.StructLayout(fields)


def check_passes(passes: int) -> int:
    """``passes`` must be 1, 2, 4 or 8 (weight regions addressed by bits)."""
    if passes not in (1, 2, 4, 8) or isinstance(passes, bool):
        raise ValueError(f"passes must be 1, 2, 4 or 8, not {passes!r}")
    return passes


def chunk_slots(max_chunks: int) -> int:
    """Buffer words reserved per plane: ``max_chunks`` rounded up to a power of two."""
    return 1 << (max_chunks - 1).bit_length()


class TileSequencer(wiring.Component):
    """Members: ``cmd`` (In stream of `command_layout`), ``w_addr``/``a_addr`` (Out, from the
    step counters), ``ctrl`` (Out, registered), ``busy`` (Out: steps remain to be issued).
    With ``passes`` weight regions the weight address is ``(plane * passes + w_pass) *
    chunk_slots + chunk``."""

    def __init__(self, family: str, max_chunks: int, passes: int = 1):
        self._family = check_family(family)
        self._max_chunks = check_positive("max_chunks", max_chunks, 1 << 16)
        self._passes = check_passes(passes)
        planes = MAX_RUNTIME_BITS if family == "bitserial" else 1
        depth = planes * chunk_slots(max_chunks)
        super().__init__({
            "cmd": In(stream.Signature(command_layout(max_chunks, passes))),
            "w_addr": Out(range(depth * passes)), "a_addr": Out(range(depth)),
            "ctrl": Out(Ctrl), "busy": Out(1),
        })

    @property
    def depth(self) -> int:
        """Words of each operand buffer the addresses span."""
        return (MAX_RUNTIME_BITS if self._family == "bitserial" else 1) * chunk_slots(self._max_chunks)

    @property
    def latency(self) -> int:
        """Cycles from accepting a command to the control word of its first step."""
        return 1

    def elaborate(self, platform) -> Module:
        m = Module()
        cmd = Signal(command_layout(self._max_chunks, self._passes))
        sig, i, c = Signal(PLANE_BITS + 1), Signal(PLANE_BITS), Signal(range(self._max_chunks))
        first = Signal()
        # chunk flags registered a step ahead: `c` is the last chunk; the tile has one chunk;
        # the index of the chunk before the last (so no compare with `c` drives the counters)
        chunk = {"last": Signal(name="c_last"), "single": Signal(name="c_single"),
                 "before_last": Signal(range(self._max_chunks), name="c_before_last")}
        # plane bounds of the current significance and (look-ahead) of the next one:
        # hi(s) = min(s, w_bits-1), lo(s) = max(s - (a_bits-1), 0)
        bounds = {n: Signal(PLANE_BITS, name=n) for n in ("i_hi", "i_lo", "next_hi", "next_lo")}
        wb1, ab1 = self._plane_limits(cmd)
        last = self._walk(m, sig, i, c, cmd, wb1, ab1, bounds, chunk)
        self._issue(m, cmd, sig, i, c, first, last, wb1, ab1, bounds)
        # taking a command comes last, so its assignments are the multiplexer next to every
        # register (one level after the command's valid, which arrives late from the unit
        # that issues it); it happens only while idle, the walk only while busy, so the
        # order changes nothing else
        self._accept(m, cmd, sig, i, c, first, bounds, chunk)
        return m

    def _plane_limits(self, cmd):
        if self._family == "bitparallel":
            return Const(0, PLANE_BITS), Const(0, PLANE_BITS)
        return cmd.w_bits_m1, cmd.a_bits_m1

    def _accept(self, m, cmd, sig, i, c, first, bounds, chunk) -> None:
        """Idle: take a command and start at the top significance ``w_top + a_top``, whose
        only plane pair is ``(w_top, a_top)``."""
        m.d.comb += self.cmd.ready.eq(~self.busy)
        with m.If(self.cmd.valid & self.cmd.ready):
            top = self.cmd.payload
            w_top = Const(0, PLANE_BITS) if self._family == "bitparallel" else top.w_bits_m1
            a_top = Const(0, PLANE_BITS) if self._family == "bitparallel" else top.a_bits_m1
            single = top.last_chunk == 0
            m.d.sync += [chunk["last"].eq(single), chunk["single"].eq(single),
                         chunk["before_last"].eq(top.last_chunk - 1)]
            m.d.sync += [cmd.eq(top), self.busy.eq(1), first.eq(1),
                         sig.eq(w_top + a_top), i.eq(w_top), c.eq(0),
                         bounds["i_hi"].eq(w_top), bounds["i_lo"].eq(w_top),
                         bounds["next_hi"].eq(Mux(a_top != 0, w_top, w_top - 1)),
                         bounds["next_lo"].eq(Mux(w_top != 0, w_top - 1, 0))]

    def _walk(self, m, sig, i, c, cmd, wb1, ab1, bounds, chunk):
        """Running: advance chunk, then plane pair, then significance. The plane bounds of
        the next significance are registered one significance ahead, and whether ``c`` is
        the last chunk one step ahead, so no comparison of ``sig`` or ``c`` sits before the
        step counters."""
        last_c = chunk["last"]
        last_i = i == bounds["i_hi"]
        last = last_c & last_i & (sig == 0)
        after = sig - 2                                    # the significance after the next
        with m.If(self.busy):
            with m.If(~last_c):
                m.d.sync += [c.eq(c + 1), last_c.eq(c == chunk["before_last"])]
            with m.Elif(~last_i):
                m.d.sync += [c.eq(0), i.eq(i + 1), last_c.eq(chunk["single"])]
            with m.Elif(~last):
                m.d.sync += [c.eq(0), sig.eq(sig - 1), last_c.eq(chunk["single"]), i.eq(bounds["next_lo"]),
                             bounds["i_hi"].eq(bounds["next_hi"]),
                             bounds["i_lo"].eq(bounds["next_lo"]),
                             bounds["next_hi"].eq(Mux(after < wb1, after, wb1)),
                             bounds["next_lo"].eq(Mux(after > ab1, after - ab1, 0))]
            with m.Else():
                m.d.sync += self.busy.eq(0)
        return last

    def _issue(self, m, cmd, sig, i, c, first, last, wb1, ab1, bounds) -> None:
        """Addresses of the current step; its control word registered."""
        j = Signal(PLANE_BITS)
        m.d.comb += j.eq(sig - i)
        i_lo = bounds["i_lo"]
        w_signed = cmd.w_enc == Encoding.SIGNED
        slot = (chunk_slots(self._max_chunks) - 1).bit_length()
        ctrl = Signal(Ctrl)
        m.d.comb += [
            ctrl.valid.eq(self.busy), ctrl.first.eq(first), ctrl.last.eq(last),
            ctrl.shift.eq(~first & (c == 0) & (i == i_lo)),
            ctrl.neg.eq((w_signed & (i == wb1)) ^ (cmd.a_signed & (j == ab1))),
            ctrl.bipolar.eq(cmd.w_enc == Encoding.ODD),
        ]
        if self._family == "bitparallel":
            m.d.comb += [ctrl.shift.eq(0), ctrl.neg.eq(0), ctrl.bipolar.eq(0)]
        with m.If(self.busy):
            m.d.sync += first.eq(0)
        m.d.sync += self.ctrl.eq(ctrl)
        region = cmd.w_pass if self._passes > 1 else Const(0, 0)
        m.d.comb += [self.w_addr.eq(Cat(c[:slot], region, i)), self.a_addr.eq(Cat(c[:slot], j))]
