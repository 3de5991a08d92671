"""Instruction emission for a `Schedule` (called only by `Schedule.to_program`)."""

from __future__ import annotations

import bisect
from dataclasses import replace

import numpy as np

from bitmill.isa import Buffer, Deps, Gemm, Load, Program, Segment, Setup, Store, Sync, Vec, VecKind
from bitmill import isa
from bitmill.geometry import nhwc_rows, to_nhwc_rows
from bitmill.numerics import Encoding
from bitmill.compiler.ir import Add, Conv2d, Dense, GlobalAvgPool, MaxPool
from bitmill.compiler.dram import MemoryMap
from bitmill.compiler.lower import layer_bands
from bitmill.packing import param_records


class _Emitter:
    """Collects instructions and derives dependency tokens from slot and DRAM accesses.

    Tokens stay ordered: a consumer syncs with the latest producer it depends on only when that
    producer is later than every producer already synced on the channel (queues are in order,
    so earlier producers are then finished too). A LOAD of bytes a STORE wrote waits for a
    compute-queue instruction known to start after that store: the first one that already
    popped the store's token (or a later store's), else a SYNC appended for it."""

    def __init__(self) -> None:
        self.items: list[list] = []          # [instruction (unfinished deps), deps dict]
        self.writer: dict = {}
        self.reader: dict = {}
        self.synced = {"l2c": -1, "c2l": -1, "c2s": -1, "s2c": -1}
        self.stores: dict[int, list] = {}    # DRAM region start -> [(lo, hi, store index)]
        self.after_store: list[tuple[int, int]] = []   # (store popped, compute instr), rising
        self.segments: list[Segment] = []

    def layer(self, name: str) -> None:
        self.segments.append(Segment(name, len(self.items)))

    def _sync(self, channel: str, producer: int | None, push: str, pop: str, me: dict) -> None:
        if producer is not None and producer > self.synced[channel]:
            self.items[producer][1][push] = True
            me[pop] = True
            self.synced[channel] = producer
            if channel == "s2c":
                self.after_store.append((producer, len(self.items)))

    def _fence_of(self, region, addr: int, nbytes: int) -> tuple[int | None, int | None]:
        """(compute instruction known to start after every store to ``addr .. addr+nbytes``,
        else the store a new SYNC must wait for)."""
        hits = [i for lo, hi, i in self.stores.get(region, ()) if lo < addr + nbytes and addr < hi]
        if not hits:
            return None, None
        last = max(hits)
        k = bisect.bisect_left(self.after_store, (last, -1))
        return (self.after_store[k][1], None) if k < len(self.after_store) else (None, last)

    def ready_after(self, buffer: Buffer, slot: int, addr: int, nbytes: int, region=None) -> int:
        """The compute instruction a LOAD of these arguments would wait for (a SYNC not yet
        emitted counts as later than every instruction so far; -1: none)."""
        comp, store = self._fence_of(region, addr, nbytes)
        waits = [r for r in (self.reader.get((buffer, slot)), comp) if r is not None]
        return len(self.items) if store is not None else max(waits, default=-1)

    def fence(self, region, addr: int, nbytes: int) -> int | None:
        """A compute instruction that starts after every store to ``addr .. addr+nbytes`` (a
        SYNC appended when no instruction so far is known to)."""
        comp, last = self._fence_of(region, addr, nbytes)
        if last is None:
            return comp
        deps: dict = {}
        self._sync("s2c", last, "push_prev", "pop_next", deps)
        self.items.append([Sync(), deps])
        return len(self.items) - 1

    def load(self, buffer: Buffer, slot: int, addr: int, nbytes: int, region: int | None = None,
             offset: int = 0) -> None:
        deps: dict = {}
        waits = [r for r in (self.reader.get((buffer, slot)), self.fence(region, addr, nbytes))
                 if r is not None]
        self._sync("c2l", max(waits) if waits else None, "push_prev", "pop_next", deps)
        self.items.append([Load(int(buffer.value), slot, addr, nbytes, offset), deps])
        self.writer[(buffer, slot)] = len(self.items) - 1

    def compute(self, instr, reads: list, out_slot: int | None) -> None:
        deps: dict = {}
        writers = [self.writer[r] for r in reads if r in self.writer]
        self._sync("l2c", max(writers) if writers else None, "push_next", "pop_prev", deps)
        if out_slot is not None:
            self._sync("s2c", self.reader.get((Buffer.OUT, out_slot)), "push_prev", "pop_next", deps)
        self.items.append([instr, deps])
        me = len(self.items) - 1
        for r in reads:
            self.reader[r] = me
        if out_slot is not None:
            self.writer[(Buffer.OUT, out_slot)] = me

    def store(self, slot: int, addr: int, nbytes: int, region: int) -> None:
        deps: dict = {}
        self._sync("c2s", self.writer.get((Buffer.OUT, slot)), "push_next", "pop_prev", deps)
        self.items.append([Store(slot, addr, nbytes), deps])
        self.reader[(Buffer.OUT, slot)] = len(self.items) - 1
        self.stores.setdefault(region, []).append((addr, addr + nbytes, len(self.items) - 1))

    def instructions(self) -> tuple:
        out = []
        for instr, deps in self.items:
            d = Deps(**{k: deps.get(k, False) for k in ("pop_prev", "pop_next", "push_prev", "push_next")})
            out.append(type(instr)(**{**vars(instr), "deps": d}))
        return tuple(out)


class _Slots:
    def __init__(self) -> None:
        self.next = {Buffer.WEIGHT: 0, Buffer.ACT: 0, Buffer.OUT: 0, Buffer.PARAM: 0}

    def take(self, buf: Buffer) -> int:
        s = self.next[buf]
        self.next[buf] ^= 1
        return s


def _geometry(node, in_shape, out_shape) -> dict:
    if isinstance(node, Dense):
        return dict(kernel=1, stride=1, pad=0, in_h=1, in_w=1, in_c=in_shape[0], out_w=1,
                    out_c=out_shape[0])
    k = node.weight.shape[2] if isinstance(node, Conv2d) else getattr(node, "kernel", 1)
    return dict(kernel=k, stride=getattr(node, "stride", 1), pad=getattr(node, "padding", 0),
                in_h=in_shape[1], in_w=in_shape[2], in_c=in_shape[0], out_w=out_shape[2],
                out_c=out_shape[0])


def _setup(g: dict, r0: int, y0: int, w_bits: int, a_bits: int, w_enc: Encoding, a_enc: Encoding,
           out, relu: bool) -> Setup:
    return Setup(**g, band_row0=r0, out_row0=y0, w_bits=w_bits, a_bits=a_bits, w_enc=w_enc,
                 a_enc=a_enc, out_bits=out.bits, out_signed=out.encoding is Encoding.SIGNED, relu=relu)


def _emit_gemm(em, slots, node, ls, regs, types) -> None:
    """Band > channel tile; GEMMs per band: `LayerSchedule.gemm_split`. A band's loads are issued
    in the order they can start (the requant table and weights need not wait for the previous
    layer's outputs); after a band's first GEMM the compute queue syncs with the stores the next
    band's inputs need, so that band's LOAD overlaps the rest of this band."""
    rows = regs[f"{node.name}.weight0"].rows               # channels per tile
    xin, out_c = types[node.inputs[0]], node.out.shape[0]
    g = _geometry(node, xin.shape, node.out.shape)
    in_r, out_r, par = regs[node.inputs[0]], regs[node.name], regs[f"{node.name}.params"]
    sp = slots.take(Buffer.PARAM)
    em.load(Buffer.PARAM, sp, par.addr, par.nbytes)
    bands = layer_bands(node, xin.shape, ls.band_rows)
    for b, band in enumerate(bands):
        y0, y1 = band.y0, band.y1
        addr, nbytes = in_r.rows_at(band.r0, band.r1)
        sa, t = slots.take(Buffer.ACT), 0
        for j, n in enumerate(ls.gemm_split):
            loads = [(Buffer.ACT, sa, addr, nbytes, in_r.addr)] if j == 0 else []
            if (b == 0 and j == 0) or not ls.weights_resident and ls.channel_tiles > 1:
                wslot = slots.take(Buffer.WEIGHT)
                wr = regs[f"{node.name}.weight" + ("" if ls.weights_resident else str(t))]
                loads.append((Buffer.WEIGHT, wslot, wr.addr, wr.nbytes, None))
            for ld in sorted(loads, key=lambda ld: em.ready_after(*ld)):
                em.load(*ld)
            if j == 0:
                em.compute(_setup(g, band.r0, y0, node.w_bits, xin.bits, node.w_enc,
                                  xin.encoding, node.out, node.relu), [], None)
                so = slots.take(Buffer.OUT)
            o0 = t * rows
            em.compute(Gemm(wslot, sa, so, o0, min(n * rows, out_c - o0), y0 * g["out_w"], (y1 - y0) * g["out_w"],
                            sp, o0 if ls.weights_resident else 0),
                       [(Buffer.WEIGHT, wslot), (Buffer.ACT, sa), (Buffer.PARAM, sp)], so)
            if j == 0 and b + 1 < len(bands):
                em.fence(in_r.addr, *in_r.rows_at(bands[b + 1].r0, bands[b + 1].r1))
            t += n
        em.store(so, *out_r.rows_at(y0, y1), out_r.addr)


def _emit_vec(em, slots, node, ls, regs, types, cfg) -> None:
    """Band by band through alternating activation slots; ADD's second operand goes to the
    second half of the slot."""
    ins = [types[i] for i in node.inputs]
    g = _geometry(node, ins[0].shape, node.out.shape)
    out_r = regs[node.name]
    par = regs.get(f"{node.name}.params")
    sp = slots.take(Buffer.PARAM) if par else 0
    if par:
        em.load(Buffer.PARAM, sp, par.addr, par.nbytes)
    kind = {Add: VecKind.ADD, MaxPool: VecKind.MAXPOOL, GlobalAvgPool: VecKind.AVGPOOL}[type(node)]
    a, b = ins[0], ins[-1]               # operands A and B (B: ADD's second input)
    half = isa.slot_bytes(cfg, Buffer.ACT.value) // 2
    for band in layer_bands(node, ins[0].shape, ls.band_rows):
        y0, y1, r0 = band.y0, band.y1, band.r0
        sa = slots.take(Buffer.ACT)
        for k, name in enumerate(node.inputs):
            r = regs[name]
            em.load(Buffer.ACT, sa, *r.rows_at(band.r0, band.r1), r.addr, offset=k * half)
        relu = getattr(node, "relu", False)
        # VEC has no weights: SETUP's weight fields repeat operand A
        em.compute(_setup(g, r0, y0, a.bits, a.bits, a.encoding, a.encoding, node.out, relu), [], None)
        so = slots.take(Buffer.OUT)
        count = (y1 - y0) * g["out_w"] * g["out_c"]
        reads = [(Buffer.ACT, sa)] + ([(Buffer.PARAM, sp)] if par else [])
        em.compute(Vec(int(kind.value), so, count, sp, sa, b.bits, b.encoding), reads, so)
        em.store(so, *out_r.rows_at(y0, y1), out_r.addr)


def last_reads(graph) -> dict[str, int]:
    """Per activation tensor, the index (in ``graph.nodes``) of the last node that reads it,
    through aliases (a flatten reads its input for as long as its own readers do); the
    input and tensors nobody reads never die (``len(graph.nodes)``)."""
    end = len(graph.nodes)
    last = {n.name: (end if not i else -1) for i, n in enumerate(graph.nodes)}
    for i, node in reversed(list(enumerate(graph.nodes))):
        reach = max(i, last[node.name]) if node.op == "flatten" else i
        for name in node.inputs:
            last[name] = max(last[name], reach)
    return {k: (end if v < 0 else v) for k, v in last.items()}


def _allocate(schedule, x, reuse: bool) -> tuple[MemoryMap, dict]:
    g = schedule.graph
    mem, regs = MemoryMap(), {}
    t = g.input.out
    regs[g.input.name] = mem.allocate(g.input.name, *nhwc_rows(t.shape), t.bits, t.encoding,
                                      None if x is None else to_nhwc_rows(x, t.shape))
    last, dying = last_reads(g), {}
    tiles = {ls.name: ls.tile_rows for ls in schedule.layers if ls.kind == "gemm"}   # channels per tile
    for i, node in enumerate(g.nodes):
        if i and node.op != "flatten":
            dying.setdefault(last[node.name], []).append(node.name)
    for i, node in enumerate(g.nodes[1:], start=1):
        for old in dying.pop(i - 1, []) if reuse else ():     # read for the last time before node i
            mem.free(regs[old])
        if node.op == "flatten":
            src = regs[node.inputs[0]]
            regs[node.name] = type(src)(node.name, src.addr, 1, node.out.shape[0], src.bits, src.encoding)
            continue
        regs[node.name] = mem.allocate(node.name, *nhwc_rows(node.out.shape), node.out.bits,
                                       node.out.encoding, reuse=reuse)
        if isinstance(node, (Conv2d, Dense)):
            w = node.weight.astype(np.int16)                  # verified: w_bits <= MAX_RUNTIME_BITS, on the grid
            w = w if w.ndim == 2 else w.transpose(0, 2, 3, 1)
            w = w.reshape(w.shape[0], -1)
            whole = mem.allocate(f"{node.name}.weight", w.shape[0], w.shape[1], node.w_bits, node.w_enc, w)
            regs[f"{node.name}.weight"] = whole
            rows = tiles[node.name]
            for t_i, o0 in enumerate(range(0, w.shape[0], rows)):           # channel tiles: row ranges
                regs[f"{node.name}.weight{t_i}"] = replace(whole, name=f"{node.name}.weight{t_i}",
                                                           addr=whole.addr + o0 * whole.pitch,
                                                           rows=min(rows, w.shape[0] - o0))
            r = node.requant
            regs[f"{node.name}.params"] = mem.add_bytes(f"{node.name}.params",
                                                        param_records(r.multiplier, r.shift, r.bias))
        elif isinstance(node, Add):
            regs[f"{node.name}.params"] = mem.add_bytes(f"{node.name}.params", param_records(
                [node.mult_a, node.mult_b], [node.shift, 0], [node.bias, 0]))
        elif isinstance(node, GlobalAvgPool):
            r = node.requant
            regs[f"{node.name}.params"] = mem.add_bytes(f"{node.name}.params",
                                                        param_records(r.multiplier, r.shift, r.bias))
    return mem, regs


def emit_program(schedule, x=None, reuse_memory: bool = False) -> Program:
    """The program of ``schedule`` and its memory image (input ``x`` written when given). With
    ``reuse_memory`` an activation tensor's bytes go to tensors produced after its last reader
    (safe without extra tokens: every later layer's stores follow, through the in-order
    compute queue, the computes that consumed those loads); `bitmill.sim.check.overwritten`
    names the tensors no longer in the final image."""

    g = schedule.graph
    mem, regs = _allocate(schedule, x, reuse_memory)
    types = g.types()
    em, slots = _Emitter(), _Slots()
    for node, ls in zip(g.nodes[1:], schedule.layers):
        if ls.kind == "alias":
            continue
        em.layer(node.name)
        if ls.kind == "gemm":
            _emit_gemm(em, slots, node, ls, regs, types)
        else:
            _emit_vec(em, slots, node, ls, regs, types, schedule.config)
    return Program(em.instructions(), mem.image(), schedule.config, tuple(regs.values()),
                   tuple(em.segments))
