"""Functional state of the accelerator: DRAM, buffer slots, layer registers, and the effect of
every instruction (whole tiles with numpy; bit-exact with the golden model's arithmetic).

Speed without changing what is computed: a LOAD copies its bytes into the slot, which decodes
them at most once per format (the cache goes with the slot's contents); the GEMMs that write one
output slot from
one activation band are kept pending and multiplied out together when their results are first
needed (a STORE or VEC of that slot, or a GEMM on another band), as one exact matrix product
over all their output channels. Results become visible only through the output slot, so the
memory image is the same as executing the GEMMs one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bitmill import isa, numerics
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.numerics import Encoding
from bitmill.geometry import Window
from bitmill.isa import Buffer, Gemm, Load, Setup, Store, Sync, Vec, VecKind
from bitmill.sim import golden
from bitmill.packing import PARAM_RECORD, pack_rows, pitch, read_param_records, unpack_rows


class SimError(BitmillError):
    """The program did something the machine cannot do (or its tokens allow a hazard)."""


def _out_enc(signed: bool) -> Encoding:
    return Encoding.SIGNED if signed else Encoding.UNSIGNED


@dataclass(frozen=True, eq=False)
class SlotLoad:
    """What one LOAD put into a buffer slot: its number (loads count up), its bytes, and their
    decodings so far (by format; they go with the bytes)."""

    number: int
    data: np.ndarray
    decoded: dict


@dataclass(frozen=True, eq=False)
class PendingGemm:
    """A GEMM executed but not yet multiplied out: output rows ``y0 .. y1`` of the band whose
    im2col matrix is ``cols``, channels ``o0 .. o0+rows`` from weight rows ``w_row ..`` of
    ``weights``, requantized with ``params`` (multipliers, shifts, biases of those channels)."""

    cols: np.ndarray
    regs: Setup
    y0: int
    y1: int
    weights: SlotLoad
    rows: int
    o0: int
    params: tuple
    w_row: int


@dataclass(eq=False)
class OutSlot:
    """An output slot's values (rows, W, C) under the layer registers that wrote them."""

    values: np.ndarray
    regs: Setup


def _decoded(entry: SlotLoad, codes: int, bits: int, enc: Encoding) -> np.ndarray:
    """A slot's bytes as rows of ``codes`` values, decoded once per slot contents."""
    key = (codes, bits, enc)
    if key not in entry.decoded:
        blob = entry.data
        entry.decoded[key] = unpack_rows(blob, len(blob) // pitch(codes, bits), codes, bits, enc,
                                         numerics.value_dtype(bits))
    return entry.decoded[key]


def _consecutive(ranges) -> bool:
    """Whether (start, length) ranges follow each other without gaps."""
    return all(b[0] == a[0] + a[1] for a, b in zip(ranges, ranges[1:]))


class MachineState:
    def __init__(self, memory: bytes, cfg: AccelConfig):
        self.cfg = cfg
        self.dram = np.frombuffer(bytearray(memory), dtype=np.uint8)
        self.slots: dict = {}          # (buffer value, slot) -> {offset: SlotLoad}
        self.out: dict = {}            # out slot -> OutSlot
        self.regs: Setup | None = None
        self._cols: dict = {}          # (buffer, slot) -> {band key: im2col matrix}
        self.pending: dict = {}        # out slot -> GEMMs not yet multiplied out
        self._loads = 0
        self._gathered: dict = {}      # weight rows of several slots, decoded together

    def apply(self, instr) -> None:
        if isinstance(instr, Gemm):
            self._gemm(instr)
        elif isinstance(instr, Load):
            self._load(instr)
        elif isinstance(instr, Setup):
            self.regs = instr
        elif isinstance(instr, Store):
            self._store(instr)
        elif isinstance(instr, Vec):
            self._vec(instr)
        elif not isinstance(instr, Sync):
            raise SimError(f"unknown instruction {instr}")

    def _load(self, i: Load) -> None:
        if i.dram_addr + i.nbytes > len(self.dram):
            raise SimError(f"LOAD reads past the end of memory at {i.dram_addr}+{i.nbytes}")
        key, size = (i.buffer, i.slot), isa.slot_bytes(self.cfg, i.buffer)
        if i.offset + i.nbytes > size:
            raise SimError(f"LOAD of {i.nbytes} bytes at offset {i.offset} overflows the {size}-byte "
                           f"{Buffer(i.buffer).name} slot")
        self._loads += 1
        held = self.slots.setdefault(key, {})
        for off in [o for o, e in held.items() if o < i.offset + i.nbytes and i.offset < o + len(e.data)]:
            del held[off]                      # bytes overwritten by this load
        held[i.offset] = SlotLoad(self._loads, self.dram[i.dram_addr:i.dram_addr + i.nbytes].copy(), {})
        self._cols.pop(key, None)

    def _slot(self, buf: Buffer, slot: int, offset: int = 0) -> SlotLoad:
        """What one LOAD put at ``offset`` of a slot (reads never span two loads)."""
        entry = self.slots.get((buf.value, slot), {}).get(offset)
        if entry is None:
            raise SimError(f"{buf.name} slot {slot} read at offset {offset} before a LOAD there")
        return entry

    def _rows(self, buf: Buffer, slot: int, codes: int, bits: int, enc: Encoding) -> np.ndarray:
        return _decoded(self._slot(buf, slot), codes, bits, enc)

    def _params(self, slot: int, count: int):
        entry = self._slot(Buffer.PARAM, slot)
        blob, cache = entry.data, entry.decoded
        if len(blob) < PARAM_RECORD * count:
            raise SimError(f"requant table holds {len(blob) // PARAM_RECORD} records, {count} needed")
        if ("params", count) not in cache:
            cache[("params", count)] = read_param_records(blob.tobytes(), count)
        return cache[("params", count)]

    def _out_range(self, r: Setup | None = None) -> tuple[int, int]:
        r = r or self.regs
        lo, hi = numerics.value_range(r.out_bits, _out_enc(r.out_signed))
        return (max(lo, 0), hi) if r.relu else (lo, hi)

    def _band(self, slot: int, y0: int, y1: int, fill: float) -> np.ndarray:
        """Input rows needed for output rows [y0, y1), padded with ``fill``, (rows, W+2p, C)."""
        r = self.regs
        band = self._rows(Buffer.ACT, slot, r.in_w * r.in_c, r.a_bits, r.a_enc)
        band = band.reshape(-1, r.in_w, r.in_c)
        window = Window(r.kernel, r.stride, r.pad)
        top, n = window.top(y0), window.span(y1 - y0)
        z = np.full((n, r.in_w + 2 * r.pad, r.in_c), fill, dtype=band.dtype)
        lo, hi = window.input_rows(y0, y1, r.in_h)
        if lo < hi:
            if lo < r.band_row0 or hi - r.band_row0 > len(band):
                bad = lo if lo < r.band_row0 else r.band_row0 + len(band)
                raise SimError(f"input row {bad} is not in the activation buffer (rows "
                               f"{r.band_row0}..{r.band_row0 + len(band) - 1})")
            z[lo - top:hi - top, r.pad:r.pad + r.in_w] = band[lo - r.band_row0:hi - r.band_row0]
        return z

    def _write_out(self, slot: int, row0: int, values: np.ndarray, c0: int, r: Setup | None = None) -> None:
        """Write (rows, W, channels) values at output rows row0.. and channels c0.."""
        r = r or self.regs
        need = row0 + values.shape[0]
        cur = self.out.get(slot)
        if cur is None or cur.regs != r:
            cur = self.out[slot] = OutSlot(np.zeros((need, r.out_w, r.out_c)), r)
        if cur.values.shape[0] < need:
            grow = np.zeros((need - cur.values.shape[0],) + cur.values.shape[1:])
            cur.values = np.concatenate([cur.values, grow])
        cur.values[row0:need, :, c0:c0 + values.shape[2]] = values

    def _band_cols(self, slot: int, y0: int, y1: int) -> np.ndarray:
        r = self.regs
        cache = self._cols.setdefault((Buffer.ACT.value, slot), {})
        key = (y0, y1, r)
        if key not in cache:
            z = self._band(slot, y0, y1, 0.0)
            cache[key] = golden.im2col(z[None], r.kernel, r.kernel, r.stride, 0)
        return cache[key]

    def _gemm(self, i: Gemm) -> None:
        r = self.regs
        if r is None:
            raise SimError("GEMM before SETUP")
        if i.p0 % r.out_w or i.npix % r.out_w:
            raise SimError(f"GEMM pixels {i.p0}+{i.npix} are not whole rows of {r.out_w}")
        y0, y1 = i.p0 // r.out_w, (i.p0 + i.npix) // r.out_w
        cols = self._band_cols(i.a_slot, y0, y1)
        params = self._params(i.p_slot, i.o0 + i.rows)
        pend = self.pending.setdefault(i.o_slot, [])
        if pend and (pend[0].cols is not cols or pend[0].regs != r):
            self._flush(i.o_slot)
            pend = self.pending.setdefault(i.o_slot, [])
        pend.append(PendingGemm(cols, r, y0, y1, self._slot(Buffer.WEIGHT, i.w_slot), i.rows, i.o0,
                                tuple(a[i.o0:i.o0 + i.rows] for a in params), i.w_row))

    def _weights(self, pend: list[PendingGemm], r: Setup) -> np.ndarray:
        """(channels, K) weights of pending GEMMs: a slot is decoded once and sliced when they
        share it, else their rows are gathered as bytes and decoded together."""
        k = r.kernel * r.kernel * r.in_c
        enc, p_w = r.w_enc, pitch(k, r.w_bits)
        for p in pend:
            if len(p.weights.data) < (p.w_row + p.rows) * p_w:
                raise SimError(f"GEMM of weight rows {p.w_row}..{p.w_row + p.rows - 1} but the weight "
                               f"slot holds {len(p.weights.data) // p_w} rows")
        loads, rows = tuple(p.weights.number for p in pend), tuple((p.w_row, p.rows) for p in pend)
        if all(n == loads[0] for n in loads):
            full = _decoded(pend[0].weights, k, r.w_bits, enc)
            if _consecutive(rows):
                return full[rows[0][0]:rows[-1][0] + rows[-1][1]]
            return np.concatenate([full[a:a + n] for a, n in rows])
        key = (loads, rows, k, r.w_bits, enc)
        if key not in self._gathered:
            raw = np.concatenate([p.weights.data[p.w_row * p_w:(p.w_row + p.rows) * p_w] for p in pend])
            self._gathered = {key: unpack_rows(raw, len(raw) // p_w, k, r.w_bits, enc,
                                               numerics.value_dtype(r.w_bits))}
        return self._gathered[key]

    def _flush(self, slot: int) -> None:
        """Multiply out the pending GEMMs of an output slot (one activation band) at once."""
        pend = self.pending.pop(slot, [])
        if not pend:
            return
        first = pend[0]
        r, y0, y1 = first.regs, first.y0, first.y1
        w = self._weights(pend, r)
        term = numerics.max_abs(r.w_bits, r.w_enc) * numerics.max_abs(r.a_bits, r.a_enc)
        m, n, b = (np.concatenate([p.params[j] for p in pend]) for j in range(3))
        acc = golden.exact_gemm(first.cols, w.T, term)
        bound = term * r.kernel * r.kernel * r.in_c
        out = numerics.requantize_exact(acc, m, b, n, bound, self._out_range(r))
        out = out.reshape(y1 - y0, r.out_w, -1)
        if _consecutive([(p.o0, p.rows) for p in pend]):
            self._write_out(slot, y0 - r.out_row0, out, first.o0, r)      # channels in order
            return
        col = 0
        for p in pend:
            self._write_out(slot, y0 - r.out_row0, out[:, :, col:col + p.rows], p.o0, r)
            col += p.rows

    def _vec(self, i: Vec) -> None:
        self._flush(i.o_slot)
        r = self.regs
        kind = VecKind(i.kind)
        rows_out = i.count // (r.out_w * r.out_c)
        if kind is VecKind.ADD:
            a = self._rows(Buffer.ACT, i.a_slot, r.in_w * r.in_c, r.a_bits, r.a_enc)[:rows_out]
            half = isa.slot_bytes(self.cfg, Buffer.ACT.value) // 2
            b = _decoded(self._slot(Buffer.ACT, i.a_slot, half), r.in_w * r.in_c, i.b_bits,
                         i.b_enc)[:rows_out]
            m, n, bias = self._params(i.p_slot, 2)
            s = a.astype(np.int64) * int(m[0]) + b.astype(np.int64) * int(m[1])
            out = numerics.requantize(s, 1, int(bias[0]), int(n[0]), self._out_range(), channel_axis=-1)
            self._write_out(i.o_slot, 0, out.reshape(rows_out, r.out_w, r.out_c), 0)
        elif kind is VecKind.MAXPOOL:
            low = numerics.value_range(r.a_bits, r.a_enc)[0] - 1
            z = self._band(i.a_slot, r.out_row0, r.out_row0 + rows_out, low)
            out = None
            s = r.stride
            for dy in range(r.kernel):
                for dx in range(r.kernel):
                    win = z[dy:dy + s * (rows_out - 1) + 1:s, dx:dx + s * (r.out_w - 1) + 1:s]
                    out = win if out is None else np.maximum(out, win)
            self._write_out(i.o_slot, 0, out, 0)
        else:
            x = self._rows(Buffer.ACT, i.a_slot, r.in_w * r.in_c, r.a_bits, r.a_enc)
            sums = x.reshape(-1, r.in_w, r.in_c).astype(np.int64).sum(axis=(0, 1))
            m, n, b = self._params(i.p_slot, r.in_c)
            out = numerics.requantize(sums[None], m, b, n, self._out_range(), channel_axis=-1)
            self._write_out(i.o_slot, 0, out.reshape(1, 1, r.in_c), 0)

    def _store(self, i: Store) -> None:
        self._flush(i.slot)
        if i.slot not in self.out:
            raise SimError(f"STORE of output slot {i.slot} before anything was computed into it")
        values, r = self.out[i.slot].values, self.out[i.slot].regs
        blob = pack_rows(values.reshape(values.shape[0], -1), r.out_bits, _out_enc(r.out_signed))
        if len(blob) < i.nbytes:
            raise SimError(f"STORE of {i.nbytes} bytes but output slot {i.slot} holds {len(blob)}")
        if i.dram_addr + i.nbytes > len(self.dram):
            raise SimError(f"STORE writes past the end of memory at {i.dram_addr}+{i.nbytes}")
        self.dram[i.dram_addr:i.dram_addr + i.nbytes] = np.frombuffer(blob, np.uint8, count=i.nbytes)
