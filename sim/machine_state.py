"""Functional state of the accelerator: DRAM, buffer slots, layer registers, and the effect of
every instruction (whole tiles with numpy; bit-exact with the golden model's arithmetic)."""

from __future__ import annotations

import numpy as np

from bitmill import numerics
from bitmill.errors import BitmillError
from bitmill.isa import Buffer, Gemm, Load, Setup, Store, Sync, Vec, VecKind
from bitmill.sim import golden
from bitmill.memlayout import pack_rows, pitch, read_param_records, unpack_rows


class SimError(BitmillError):
    """The program did something the machine cannot do (or its tokens allow a hazard)."""


def _act_enc(signed: int) -> str:
    return "signed" if signed else "unsigned"


class MachineState:
    def __init__(self, memory: bytes):
        self.dram = bytearray(memory)
        self.slots: dict = {}          # (buffer, slot) -> (bytes, load sequence number)
        self.out: dict = {}            # out slot -> [codes array (rows, W, C), bits, signed]
        self.regs: Setup | None = None
        self._seq = 0
        self._cache: dict = {}
        self.pending: dict = {}        # out slot -> GEMMs not yet multiplied out
        self._decoded: dict = {}       # (dram range, format) -> decoded codes

    def apply(self, instr) -> None:
        if isinstance(instr, Load):
            self._seq += 1
            blob = bytes(self.dram[instr.dram_addr:instr.dram_addr + instr.nbytes])
            if len(blob) != instr.nbytes:
                raise SimError(f"LOAD reads past the end of memory at {instr.dram_addr}+{instr.nbytes}")
            self.slots[(Buffer(instr.buffer), instr.slot)] = (blob, (instr.dram_addr, instr.nbytes))
            self._cache.pop((Buffer(instr.buffer), instr.slot), None)
        elif isinstance(instr, Setup):
            self.regs = instr
        elif isinstance(instr, Gemm):
            self._gemm(instr)
        elif isinstance(instr, Vec):
            self._vec(instr)
        elif isinstance(instr, Store):
            self._store(instr)
        elif not isinstance(instr, Sync):
            raise SimError(f"unknown instruction {instr}")

    def _slot(self, buf: Buffer, slot: int) -> tuple[bytes, int]:
        if (buf, slot) not in self.slots:
            raise SimError(f"{buf.name} slot {slot} read before any LOAD")
        return self.slots[(buf, slot)]

    def _rows(self, buf: Buffer, slot: int, codes: int, bits: int, enc: str) -> np.ndarray:
        blob, src = self._slot(buf, slot)
        key = (src, codes, bits, enc)        # decoded once per memory range until it is stored to
        if key not in self._decoded:
            self._decoded[key] = unpack_rows(blob, len(blob) // pitch(codes, bits), codes, bits, enc)
        return self._decoded[key]

    def _params(self, count: int):
        blob, _ = self._slot(Buffer.PARAM, 0)
        if len(blob) < 16 * count:
            raise SimError(f"requant table holds {len(blob) // 16} records, {count} needed")
        return read_param_records(blob, count)

    def _out_range(self, r: Setup | None = None) -> tuple[int, int]:
        r = r or self.regs
        lo, hi = numerics.value_range(r.out_bits, "signed" if r.out_signed else "unsigned")
        return (max(lo, 0), hi) if r.relu else (lo, hi)

    def _band(self, slot: int, y0: int, y1: int, fill: float) -> np.ndarray:
        """Input rows needed for output rows [y0, y1), padded with ``fill``, (rows, W+2p, C)."""
        r = self.regs
        band = self._rows(Buffer.ACT, slot, r.in_w * r.in_c, r.a_bits, _act_enc(r.a_enc))
        band = band.reshape(-1, r.in_w, r.in_c)
        top = y0 * r.stride - r.pad
        n = (y1 - 1) * r.stride + r.kernel - y0 * r.stride
        z = np.full((n, r.in_w + 2 * r.pad, r.in_c), fill)
        for i in range(n):
            y = top + i
            if 0 <= y < r.in_h:
                j = y - r.band_row0
                if not 0 <= j < len(band):
                    raise SimError(f"input row {y} is not in the activation buffer (rows "
                                   f"{r.band_row0}..{r.band_row0 + len(band) - 1})")
                z[i, r.pad:r.pad + r.in_w] = band[j]
        return z

    def _write_out(self, slot: int, row0: int, codes: np.ndarray, c0: int, r: Setup | None = None) -> None:
        """Write (rows, W, channels) codes at output rows row0.. and channels c0.."""
        r = r or self.regs
        need = row0 + codes.shape[0]
        cur = self.out.get(slot)
        if cur is None or cur[0].shape[1:] != (r.out_w, r.out_c) or cur[3] != r:
            cur = [np.zeros((need, r.out_w, r.out_c), np.int64), r.out_bits, r.out_signed, r]
            self.out[slot] = cur
        if cur[0].shape[0] < need:
            cur[0] = np.concatenate([cur[0], np.zeros((need - cur[0].shape[0],) + cur[0].shape[1:], np.int64)])
        cur[0][row0:need, :, c0:c0 + codes.shape[2]] = codes

    def _gemm(self, i: Gemm) -> None:
        r = self.regs
        if r is None:
            raise SimError("GEMM before SETUP")
        if i.p0 % r.out_w or i.npix % r.out_w:
            raise SimError(f"GEMM pixels {i.p0}+{i.npix} are not whole rows of {r.out_w}")
        k = r.kernel * r.kernel * r.in_c
        w = self._rows(Buffer.WEIGHT, i.w_slot, k, r.w_bits, "odd" if r.w_enc else "signed")[:i.rows]
        y0, y1 = i.p0 // r.out_w, (i.p0 + i.npix) // r.out_w
        cache = self._cache.setdefault((Buffer.ACT, i.a_slot), {})
        key = ("cols", y0, y1, r)
        if key not in cache:
            z = self._band(i.a_slot, y0, y1, 0.0)
            cache[key] = golden.im2col(z[None].astype(np.float32 if r.a_bits <= 8 else np.float64),
                                       r.kernel, r.kernel, r.stride, 0)
        cols = cache[key]
        m, n, b = (a[i.o0:i.o0 + i.rows] for a in self._params(i.o0 + i.rows))
        pend = self.pending.setdefault(i.o_slot, [])
        if pend and (pend[0][0] is not cols or pend[0][6] != r):
            self._flush(i.o_slot)
            pend = self.pending.setdefault(i.o_slot, [])
        pend.append((cols, w, i.o0, m, n, b, r, y0, y1))

    def _flush(self, slot: int) -> None:
        """Compute the pending GEMMs of an output slot that share one activation band as one
        matrix product (their results become visible only through the output slot)."""
        pend = self.pending.pop(slot, [])
        if not pend:
            return
        cols, _, _, _, _, _, r, y0, y1 = pend[0]
        term = numerics.max_abs(r.w_bits, "odd" if r.w_enc else "signed") * \
            numerics.max_abs(r.a_bits, _act_enc(r.a_enc))
        w = np.concatenate([p[1] for p in pend]).astype(np.float64)
        m, n, b = (np.concatenate([p[k] for p in pend]) for k in (3, 4, 5))
        acc = golden.exact_gemm(cols, w.T, term).astype(np.int64)
        out = numerics.requantize(acc, m, b, n, self._out_range(r), channel_axis=-1)
        col = 0
        for p in pend:
            rows = p[1].shape[0]
            self._write_out(slot, y0 - r.out_row0, out[:, col:col + rows].reshape(y1 - y0, r.out_w, rows), p[2], r)
            col += rows

    def _vec(self, i: Vec) -> None:
        self._flush(i.o_slot)
        r = self.regs
        kind = VecKind(i.kind)
        rows_out = i.count // (r.out_w * r.out_c)
        if kind is VecKind.ADD:
            a = self._rows(Buffer.ACT, 0, r.in_w * r.in_c, r.a_bits, _act_enc(r.a_enc))[:rows_out]
            b = self._rows(Buffer.ACT, 1, r.in_w * r.in_c, r.w_bits, _act_enc(r.w_enc))[:rows_out]
            m, n, bias = self._params(2)
            s = a * int(m[0]) + b * int(m[1])
            out = numerics.requantize(s, 1, int(bias[0]), int(n[0]), self._out_range(), channel_axis=-1)
            self._write_out(i.o_slot, 0, out.reshape(rows_out, r.out_w, r.out_c), 0)
        elif kind is VecKind.MAXPOOL:
            low = numerics.value_range(r.a_bits, _act_enc(r.a_enc))[0] - 1
            z = self._band(0, r.out_row0, r.out_row0 + rows_out, low).astype(np.int64)
            out = None
            s = r.stride
            for dy in range(r.kernel):
                for dx in range(r.kernel):
                    win = z[dy:dy + s * (rows_out - 1) + 1:s, dx:dx + s * (r.out_w - 1) + 1:s]
                    out = win if out is None else np.maximum(out, win)
            self._write_out(i.o_slot, 0, out, 0)
        else:
            x = self._rows(Buffer.ACT, 0, r.in_w * r.in_c, r.a_bits, _act_enc(r.a_enc))
            sums = x.reshape(-1, r.in_w, r.in_c).sum(axis=(0, 1))
            m, n, b = self._params(r.in_c)
            out = numerics.requantize(sums[None], m, b, n, self._out_range(), channel_axis=-1)
            self._write_out(i.o_slot, 0, out.reshape(1, 1, r.in_c), 0)

    def _store(self, i: Store) -> None:
        self._flush(i.slot)
        if i.slot not in self.out:
            raise SimError(f"STORE of output slot {i.slot} before anything was computed into it")
        codes, bits, signed, _ = self.out[i.slot]
        blob = pack_rows(codes.reshape(codes.shape[0], -1), bits, "signed" if signed else "unsigned")
        if len(blob) < i.nbytes:
            raise SimError(f"STORE of {i.nbytes} bytes but output slot {i.slot} holds {len(blob)}")
        self.dram[i.dram_addr:i.dram_addr + i.nbytes] = blob[:i.nbytes]
        lo, hi = i.dram_addr, i.dram_addr + i.nbytes
        self._decoded = {k: v for k, v in self._decoded.items() if k[0][0] >= hi or k[0][0] + k[0][1] <= lo}
