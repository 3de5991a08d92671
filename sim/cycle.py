"""Cycle-accurate simulator: executes a `Program` on an `AccelConfig`.

Timing follows `bitmill.timing` exactly: three in-order queues (load, compute, store); an
instruction starts when its queue is free and every token it pops has been pushed; tokens are
available at the end of the pushing instruction. The engine steps instruction by instruction
(never cycle by cycle). It then checks that the tokens order every buffer slot and DRAM access
(a later LOAD never overwrites a slot still being read, a reader never starts before its data is
loaded or stored), and applies each instruction's effect in start-time order with numpy
(`MachineState`), so the final memory image is what the hardware would hold.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields

import numpy as np
from tqdm import tqdm

from bitmill import timing
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.isa import QUEUE_OF, Buffer, Gemm, Load, Program, Queue, Setup, Store, Sync, Vec, VecKind
from bitmill.sim.functional import MachineState, SimError
from bitmill.sim.stats import SimStats, Timing, class_stats, layer_stats

CHANNELS = ("l2c", "c2l", "c2s", "s2c")
WAIT_CAUSES = ("none", "load", "store", "compute")      # codes of what a queue waited for
_WAITS_FOR = (1, 3, 3, 2)                                 # per channel l2c, c2l, c2s, s2c


def latency(cfg: AccelConfig, instr, regs: Setup | None) -> int:
    """Cycles of one instruction under the layer registers ``regs``."""
    if isinstance(instr, Load):
        return timing.load_cycles(cfg, instr.dram_addr, instr.offset, instr.nbytes)
    if isinstance(instr, Store):
        return timing.store_cycles(cfg, instr.dram_addr, instr.nbytes)
    if isinstance(instr, (Setup, Sync)):
        return timing.SETUP_CYCLES
    if regs is None:
        raise SimError(f"{type(instr).__name__} before SETUP")
    if isinstance(instr, Gemm):
        return timing.gemm_cycles(cfg, instr.npix, instr.rows, regs.kernel, regs.in_c, regs.in_w,
                                  regs.w_bits, regs.a_bits)
    return timing.vec_unit_cycles(cfg, instr.kind, instr.count, regs.kernel, regs.stride, regs.pad,
                                  regs.in_h, regs.in_w, regs.in_c, regs.out_w, regs.out_c,
                                  regs.a_bits, regs.out_bits)


_OPS = {cls: cls.opcode.value for cls in (Setup, Load, Gemm, Vec, Store, Sync)}
_QUEUE = np.zeros(max(_OPS.values()) + 1, np.int64)
for _cls, _op in _OPS.items():
    _QUEUE[_op] = QUEUE_OF[_cls.opcode].value
_ROW = {
    Setup: lambda i: (0,) * 13,
    Load: lambda i: (i.nbytes, i.dram_addr, i.buffer, i.slot, 0, 0, 0, 0, 0, 0, 0, 0, i.offset),
    Gemm: lambda i: (0, 0, 0, 0, i.w_slot, i.a_slot, i.o_slot, i.p_slot, i.npix, i.rows, 0, 0, 0),
    Vec: lambda i: (0, 0, 0, 0, 0, i.a_slot, i.o_slot, i.p_slot, 0, 0, i.kind, i.count, 0),
    Store: lambda i: (i.nbytes, i.dram_addr, Buffer.OUT.value, i.slot, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    Sync: lambda i: (0,) * 13,
}


@dataclass(frozen=True, eq=False)
class ProgramTable:
    """The program as columns of integers, one entry per instruction (0 where a field does not
    apply): opcode value, dependency flags, LOAD/STORE bytes, DRAM address, buffer and slot,
    GEMM/VEC slots, GEMM pixels and channels, VEC kind and count, LOAD slot offset."""

    op: np.ndarray
    pop_prev: np.ndarray
    pop_next: np.ndarray
    push_prev: np.ndarray
    push_next: np.ndarray
    nbytes: np.ndarray
    addr: np.ndarray
    buffer: np.ndarray
    slot: np.ndarray
    w_slot: np.ndarray
    a_slot: np.ndarray
    o_slot: np.ndarray
    p_slot: np.ndarray
    npix: np.ndarray
    rows: np.ndarray
    kind: np.ndarray
    count: np.ndarray
    offset: np.ndarray


def table(program: Program) -> ProgramTable:
    """The program as a `ProgramTable`."""
    rows = []
    for ins in program.instructions:
        cls, d = type(ins), ins.deps
        if cls not in _OPS:
            raise SimError(f"unknown instruction {ins}")
        rows.append((_OPS[cls], d.pop_prev, d.pop_next, d.push_prev, d.push_next) + _ROW[cls](ins))
    n = len(fields(ProgramTable))
    arr = np.array(rows, np.int64).reshape(-1, n)
    return ProgramTable(*(arr[:, j] for j in range(n)))


def latencies(program: Program, tab: ProgramTable | None = None) -> np.ndarray:
    """Cycles of every instruction (`latency` under the SETUP before it in the compute queue)."""
    tab = tab or table(program)
    cfg, op, n = program.config, tab.op, len(program.instructions)
    lat = np.full(n, timing.SETUP_CYCLES, np.int64)
    b = cfg.mem_bytes_per_cycle
    for code, cycles in ((_OPS[Load], timing.load_cycles), (_OPS[Store], timing.store_cycles)):
        mem = op == code
        keys = np.stack([tab.addr[mem] % b, tab.offset[mem] % b, tab.nbytes[mem]], axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        args = ((int(a), int(o), int(n)) if code == _OPS[Load] else (int(a), int(n)) for a, o, n in uniq)
        lat[mem] = np.array([cycles(cfg, *x) for x in args], np.int64).reshape(-1)[inv.reshape(-1)]
    setup = np.maximum.accumulate(np.where(op == _OPS[Setup], np.arange(n), -1))
    memo: dict = {}
    for i in np.flatnonzero((op == _OPS[Gemm]) | (op == _OPS[Vec])).tolist():
        key = (int(setup[i]), op[i], tab.npix[i], tab.rows[i], tab.kind[i], tab.count[i])
        if key not in memo:
            regs = program.instructions[key[0]] if key[0] >= 0 else None
            memo[key] = latency(cfg, program.instructions[i], regs)
        lat[i] = memo[key]
    return lat


# channel ids: 0 l2c, 1 c2l, 2 c2s, 3 s2c; per queue the channel of each flag (None: none)
_FLAG_CHANNEL = {Queue.LOAD.value: (None, 1, None, 0), Queue.COMPUTE.value: (0, 3, 1, 2),
                 Queue.STORE.value: (2, None, 3, None)}
_FLAGS = ("pop_prev", "pop_next", "push_prev", "push_next")


def _flows(program: Program, tab: ProgramTable) -> list[tuple[int, tuple, tuple]]:
    """(queue, channels popped, channels pushed) per instruction."""
    queue = _QUEUE[tab.op]
    flags = np.stack([getattr(tab, f) for f in _FLAGS], axis=1)
    memo: dict = {}
    out = []
    for i, (q, key) in enumerate(zip(queue.tolist(), (flags @ np.array([1, 2, 4, 8])).tolist())):
        if (q, key) not in memo:
            chans = [_FLAG_CHANNEL[q][j] if key >> j & 1 else -1 for j in range(4)]
            if None in chans:
                flag = _FLAGS[chans.index(None)]
                raise SimError(f"instruction {i} ({program.instructions[i].opcode.name}) sets {flag}, "
                               f"which the {Queue(q).label} queue does not have")
            memo[(q, key)] = (q, tuple(c for c in chans[:2] if c >= 0), tuple(c for c in chans[2:] if c >= 0))
        out.append(memo[(q, key)])
    return out


def run_queues(program: Program, tab: ProgramTable | None = None,
               lat: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Start and end cycle of every instruction (cycle 0 is the first cycle after START), the
    cycles its queue stood idle before it and what it waited for (a `WAIT_CAUSES` code);
    `SimError` on a deadlock. The queues start each fill after its preload
    (`timing.preload_cycles` of its words); the first fill's preload starts in cycle 0, a
    later one in the cycle after the previous fill's last instruction ended, and token counts
    carry over. ``lat`` overrides the instructions' cycles (default `latencies`)."""
    tab = tab or table(program)
    try:
        program.check_queue_depth()
    except BitmillError as exc:
        raise SimError(str(exc)) from None
    flow = _flows(program, tab)
    lat = (latencies(program, tab) if lat is None else np.asarray(lat)).tolist()
    n = len(flow)
    start, end, idle, waited = [0] * n, [0] * n, [0] * n, [0] * n
    tokens = _Tokens()
    fill_start = 0
    for r, words in zip(program.fill_ranges(), program.fill_words()):
        if len(r):          # an empty program has one empty fill and no preload
            t0 = fill_start + timing.preload_cycles(program.config, words)
            _run_fill(r, t0, flow, lat, tokens, (start, end, idle, waited))
            fill_start = max(end[i] for i in r) + 1
    return tuple(np.array(a, np.int64) for a in (start, end, idle, waited))


class _Tokens:
    """Push times per token channel and how many of each channel were popped (they carry
    over from one fill to the next)."""

    def __init__(self):
        self.pushes: list[list[int]] = [[], [], [], []]
        self.pops = [0, 0, 0, 0]


def _run_fill(r: range, t0: int, flow, lat: list, tokens: _Tokens, out: tuple) -> None:
    """Schedule the instructions ``r`` of one fill, its queues free from cycle ``t0``; write
    each one's start, end, idle cycles and wait cause into ``out``."""
    start, end, idle, waited = out
    pushes, pops = tokens.pushes, tokens.pops
    order = [[i for i in r if flow[i][0] == q] for q in range(len(Queue))]
    ptr, free = [0] * len(Queue), [t0] * len(Queue)
    remaining = len(r)
    while remaining:
        progressed = False
        for q in range(len(Queue)):
            p, t_free, todo = ptr[q], free[q], order[q]
            while p < len(todo):
                idx = todo[p]
                _, need, give = flow[idx]
                if any(pops[ch] >= len(pushes[ch]) for ch in need):
                    break
                t, cause = t_free, 0
                for ch in need:
                    pushed = pushes[ch][pops[ch]]
                    pops[ch] += 1
                    if pushed > t:
                        t, cause = pushed, _WAITS_FOR[ch]
                start[idx], idle[idx], waited[idx] = t, t - t_free, cause
                t_free = end[idx] = t + lat[idx]
                for ch in give:
                    pushes[ch].append(t_free)
                p += 1
            if p != ptr[q]:
                progressed, remaining = True, remaining - (p - ptr[q])
            ptr[q], free[q] = p, t_free
        if not progressed:
            raise _deadlock(flow, order, ptr, pops, pushes)


def _deadlock(flow, order, ptr, pops, pushes) -> SimError:
    """Which token each stuck queue waits for."""
    return SimError("deadlock: " + "; ".join(
        f"{Queue(q).label} queue at instruction {order[q][ptr[q]]} waits for a "
        f"{'/'.join(CHANNELS[ch] for ch in flow[order[q][ptr[q]]][1] if pops[ch] >= len(pushes[ch]))} token"
        for q in range(len(Queue)) if ptr[q] < len(order[q])))


def schedule_times(program: Program) -> tuple[np.ndarray, np.ndarray]:
    """Start and end cycle of every instruction; `SimError` on a deadlock."""
    start, end, _, _ = run_queues(program)
    return start, end


def _accesses(tab: ProgramTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(instruction, slot id = 2 * buffer + slot, is write) of every buffer slot access."""
    op, parts = tab.op, []

    def add(mask, buf, slot, write) -> None:
        idx = np.flatnonzero(mask)
        b = buf[idx] if isinstance(buf, np.ndarray) else np.full(len(idx), buf)
        parts.append((idx, 2 * b + slot[idx], np.full(len(idx), write)))
    g, v = op == _OPS[Gemm], op == _OPS[Vec]
    add(op == _OPS[Load], tab.buffer, tab.slot, True)
    add(op == _OPS[Store], Buffer.OUT.value, tab.slot, False)
    add(g, Buffer.WEIGHT.value, tab.w_slot, False)
    add(g, Buffer.ACT.value, tab.a_slot, False)
    add(g | (v & (tab.kind != VecKind.MAXPOOL.value)), Buffer.PARAM.value, tab.p_slot, False)
    add(g | v, Buffer.OUT.value, tab.o_slot, True)
    add(v, Buffer.ACT.value, tab.a_slot, False)
    return tuple(np.concatenate(c) for c in zip(*parts))


def _slot_name(slot_id: int) -> str:
    return f"{Buffer(slot_id // 2).name} slot {slot_id % 2}"


def _slot_hazards(tab: ProgramTable, start: np.ndarray, end: np.ndarray) -> list[tuple[int, str]]:
    """(instruction, message) of every read before its data is written and every write while
    an earlier reader still reads the slot."""
    idx, slot, write = _accesses(tab)
    if not len(idx):
        return []
    order = np.lexsort((idx, slot))                          # by slot, then program order
    idx, slot, write = idx[order], slot[order], write[order]
    pos = np.arange(len(idx))
    first = np.r_[True, slot[1:] != slot[:-1]]
    group_start = np.maximum.accumulate(np.where(first, pos, 0))
    last_w = np.maximum.accumulate(np.where(write, pos, -1))
    last_w = np.where(last_w >= group_start, last_w, -1)    # the slot's own last writer
    found = []
    raw = ~write & (last_w >= 0)
    raw &= start[idx] < end[idx[np.maximum(last_w, 0)]]
    for p in np.flatnonzero(raw):
        w = idx[last_w[p]]
        found.append((int(idx[p]), f"hazard: instruction {idx[p]} reads {_slot_name(slot[p])} at cycle "
                                   f"{start[idx[p]]} before instruction {w} finished writing it at {end[w]}"))
    nxt = np.minimum.accumulate(np.where(write, pos, len(idx))[::-1])[::-1]   # next write at/after
    nxt_after = np.r_[nxt[1:], len(idx)]
    ok = nxt_after < len(idx)
    same = ok.copy()
    same[ok] = slot[nxt_after[ok]] == slot[ok]
    war = ~write & same
    war[war] &= start[idx[nxt_after[war]]] < end[idx[war]]
    for p in np.flatnonzero(war):
        w, r = idx[nxt_after[p]], idx[p]
        found.append((int(w), f"hazard: instruction {w} overwrites {_slot_name(slot[p])} at cycle "
                              f"{start[w]} while instruction {r} reads it until {end[r]}"))
    return found


def _dram_hazards(tab: ProgramTable, start: np.ndarray, end: np.ndarray) -> list[tuple[int, str]]:
    """A LOAD that starts before an earlier STORE to the same bytes has finished."""
    l_idx, s_idx = np.flatnonzero(tab.op == _OPS[Load]), np.flatnonzero(tab.op == _OPS[Store])
    l_lo, s_lo = tab.addr[l_idx], tab.addr[s_idx]
    l_hi, s_hi = l_lo + tab.nbytes[l_idx], s_lo + tab.nbytes[s_idx]
    bad = (s_idx[None] < l_idx[:, None]) & (s_lo[None] < l_hi[:, None]) & (l_lo[:, None] < s_hi[None])
    bad &= start[l_idx][:, None] < end[s_idx][None]
    return [(int(l_idx[a]), f"hazard: LOAD {l_idx[a]} reads memory that STORE {s_idx[b]} writes until "
                            f"cycle {end[s_idx[b]]}") for a, b in zip(*np.nonzero(bad))]


def check_hazards(program: Program, start: np.ndarray, end: np.ndarray, tab: ProgramTable | None = None) -> None:
    """Raise `SimError` when the timing lets an access overtake the one it depends on (the
    violation at the earliest instruction is reported)."""
    tab = tab or table(program)
    found = _slot_hazards(tab, start, end) + _dram_hazards(tab, start, end)
    if found:
        raise SimError(min(found)[1])


def simulate(program: Program, layers: dict[str, str], macs: dict[str, int] | None = None,
             bits: dict[str, tuple[int, int]] | None = None,
             progress: bool = False) -> tuple[bytes, SimStats]:
    """Run ``program``; return the final memory image and the statistics. ``layers`` maps the
    name of each layer segment of ``program.segments`` to its op; ``progress`` shows a bar
    when stderr is a terminal."""
    tab = table(program)
    start, end, idle, waited = run_queues(program, tab)
    check_hazards(program, start, end, tab)
    state = MachineState(program.memory, program.config)
    order = np.lexsort((np.arange(len(start)), start))
    instrs = program.instructions
    hide = not (progress and sys.stderr.isatty())
    for idx in tqdm(order, desc="simulate", disable=hide, leave=False, unit="instr"):
        state.apply(instrs[idx])
    timing = Timing(tab.op, tab.nbytes, start, end, idle, waited)
    stats = SimStats(program.config.name, program.config.clock_mhz, int(end.max(initial=0)),
                     layer_stats(program, timing, layers, macs or {}, bits or {}), class_stats(timing),
                     int(start.min()) if len(start) else 0)
    return state.dram.tobytes(), stats
