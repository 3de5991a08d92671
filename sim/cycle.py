"""Cycle-accurate simulator: executes a `Program` on an `AccelConfig`.

Timing follows `bitmill.machine` exactly: three in-order queues (load, compute, store); an
instruction starts when its queue is free and every token it pops has been pushed; tokens are
available at the end of the pushing instruction. The engine steps instruction by instruction
(never cycle by cycle). It then checks that the tokens order every buffer slot and DRAM access
(a later LOAD never overwrites a slot still being read, a reader never starts before its data is
loaded or stored), and applies each instruction's effect in start-time order with numpy
(`MachineState`), so the final memory image is what the hardware would hold.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from tqdm import tqdm

from bitmill import machine
from bitmill.config import AccelConfig
from bitmill.isa import QUEUE_OF, Buffer, Gemm, Load, Opcode, Program, Setup, Store, Sync, Vec, VecKind
from bitmill.sim.machine_state import MachineState, SimError
from bitmill.sim.stats import ClassStats, LayerStats, SimStats

# token channel popped / pushed by a flag, per queue
_POP = {("load", "pop_next"): "c2l", ("compute", "pop_prev"): "l2c", ("compute", "pop_next"): "s2c",
        ("store", "pop_prev"): "c2s"}
_PUSH = {("load", "push_next"): "l2c", ("compute", "push_prev"): "c2l", ("compute", "push_next"): "c2s",
         ("store", "push_prev"): "s2c"}


def latency(cfg: AccelConfig, instr, regs: Setup | None) -> int:
    """Cycles of one instruction under the layer registers ``regs``."""
    if isinstance(instr, (Load, Store)):
        return machine.mem_cycles(cfg, instr.nbytes)
    if isinstance(instr, (Setup, Sync)):
        return machine.SETUP_CYCLES
    if regs is None:
        raise SimError(f"{type(instr).__name__} before SETUP")
    if isinstance(instr, Gemm):
        k = regs.kernel * regs.kernel * regs.in_c
        return machine.gemm_cycles(cfg, instr.npix, k, regs.w_bits, regs.a_bits)
    kind = VecKind(instr.kind)
    work = {VecKind.ADD: instr.count, VecKind.MAXPOOL: instr.count * regs.kernel ** 2,
            VecKind.AVGPOOL: regs.in_h * regs.in_w * regs.in_c}[kind]
    return machine.vec_cycles(cfg, work)


def schedule_times(program: Program) -> tuple[np.ndarray, np.ndarray]:
    """Start and end cycle of every instruction; `SimError` on a deadlock."""
    cfg, instrs = program.config, program.instructions
    queues = {"load": [], "compute": [], "store": []}
    for idx, ins in enumerate(instrs):
        q = QUEUE_OF[ins.opcode]
        for flag in ("pop_prev", "pop_next", "push_prev", "push_next"):
            if getattr(ins.deps, flag) and (q, flag) not in _POP and (q, flag) not in _PUSH:
                raise SimError(f"instruction {idx} ({ins.opcode.name}) sets {flag}, which the "
                               f"{q} queue does not have")
        queues[q].append(idx)
    start, end = np.zeros(len(instrs), np.int64), np.zeros(len(instrs), np.int64)
    ptr, free = dict.fromkeys(queues, 0), dict.fromkeys(queues, 0)
    pushes, pops = defaultdict(list), defaultdict(int)
    regs = None
    while any(ptr[q] < len(queues[q]) for q in queues):
        progressed = False
        for q, order in queues.items():
            while ptr[q] < len(order):
                idx = order[ptr[q]]
                ins = instrs[idx]
                need = [_POP[(q, f)] for f in ("pop_prev", "pop_next") if getattr(ins.deps, f)]
                if any(pops[ch] >= len(pushes[ch]) for ch in need):
                    break
                t0 = max([free[q]] + [pushes[ch][pops[ch]] for ch in need])
                for ch in need:
                    pops[ch] += 1
                if isinstance(ins, Setup):
                    regs = ins
                t1 = t0 + latency(cfg, ins, regs)
                start[idx], end[idx], free[q] = t0, t1, t1
                for f in ("push_prev", "push_next"):
                    if getattr(ins.deps, f):
                        pushes[_PUSH[(q, f)]].append(t1)
                ptr[q] += 1
                progressed = True
        if not progressed:
            waits = [f"{q} queue at instruction {queues[q][ptr[q]]} waits for a "
                     f"{'/'.join(_POP[(q, f)] for f in ('pop_prev', 'pop_next') if getattr(instrs[queues[q][ptr[q]]].deps, f))} token"
                     for q in queues if ptr[q] < len(queues[q])]
            raise SimError("deadlock: " + "; ".join(waits))
    return start, end


def _reads_writes(ins) -> tuple[list, list]:
    """Buffer slots an instruction reads and writes."""
    if isinstance(ins, Load):
        return [], [(Buffer(ins.buffer), ins.slot)]
    if isinstance(ins, Gemm):
        return [(Buffer.WEIGHT, ins.w_slot), (Buffer.ACT, ins.a_slot), (Buffer.PARAM, 0)], \
            [(Buffer.OUT, ins.o_slot)]
    if isinstance(ins, Vec):
        kind = VecKind(ins.kind)
        reads = [(Buffer.ACT, 0)] + ([(Buffer.ACT, 1)] if kind is VecKind.ADD else [])
        reads += [] if kind is VecKind.MAXPOOL else [(Buffer.PARAM, 0)]
        return reads, [(Buffer.OUT, ins.o_slot)]
    if isinstance(ins, Store):
        return [(Buffer.OUT, ins.slot)], []
    return [], []


def check_hazards(program: Program, start: np.ndarray, end: np.ndarray) -> None:
    """Raise `SimError` when the timing lets an access overtake the one it depends on."""
    last_write: dict = {}
    readers: dict = defaultdict(list)
    stores: list[tuple[int, int, int, int]] = []
    for idx, ins in enumerate(program.instructions):
        reads, writes = _reads_writes(ins)
        for s in reads:
            w = last_write.get(s)
            if w is not None and start[idx] < end[w]:
                raise SimError(f"hazard: instruction {idx} reads {s[0].name} slot {s[1]} at cycle "
                               f"{start[idx]} before instruction {w} finished writing it at {end[w]}")
            readers[s].append(idx)
        for s in writes:
            for r in readers.pop(s, []):
                if start[idx] < end[r]:
                    raise SimError(f"hazard: instruction {idx} overwrites {s[0].name} slot {s[1]} at "
                                   f"cycle {start[idx]} while instruction {r} reads it until {end[r]}")
            last_write[s] = idx
        if isinstance(ins, Load):
            lo, hi = ins.dram_addr, ins.dram_addr + ins.nbytes
            for a, b, j, t in stores:
                if a < hi and lo < b and start[idx] < t:
                    raise SimError(f"hazard: LOAD {idx} reads memory that STORE {j} writes until cycle {t}")
        if isinstance(ins, Store):
            stores.append((ins.dram_addr, ins.dram_addr + ins.nbytes, idx, int(end[idx])))


def _layer_stats(program, start, end, names, macs_of, bits_of) -> tuple[LayerStats, ...]:
    cfg, instrs = program.config, program.instructions
    bounds = [i for i, ins in enumerate(instrs) if isinstance(ins, Sync)]
    segments = list(zip([0] + bounds, bounds + [len(instrs)]))
    if len(segments) != len(names):
        raise SimError(f"program has {len(segments)} layers, {len(names)} names given")
    out = []
    for name, (a, b) in zip(names, segments):
        idx = np.arange(a, b)
        busy = {q: int(sum(end[i] - start[i] for i in idx if QUEUE_OF[instrs[i].opcode] == q))
                for q in ("load", "compute", "store")}
        t0, t1 = int(start[idx].min()), int(end[idx].max())
        macs = macs_of.get(name, 0)
        w, a_ = bits_of.get(name, (8, 8))
        util = macs / ((t1 - t0) * machine.peak_macs_per_cycle(cfg, w, a_)) if macs else 0.0
        loaded = sum(instrs[i].nbytes for i in idx if isinstance(instrs[i], Load))
        stored = sum(instrs[i].nbytes for i in idx if isinstance(instrs[i], Store))
        out.append(LayerStats(name, names[name] if isinstance(names, dict) else "", t0, t1,
                              busy["load"], busy["compute"], busy["store"], loaded, stored, macs,
                              util, busy["compute"] / max(1, t1 - t0)))
    return tuple(out)


def _class_stats(program, start, end) -> tuple[ClassStats, ...]:
    out = []
    for op in Opcode:
        idx = [i for i, ins in enumerate(program.instructions) if ins.opcode is op]
        if idx:
            nbytes = sum(getattr(program.instructions[i], "nbytes", 0) for i in idx)
            out.append(ClassStats(op.name, len(idx), int(sum(end[i] - start[i] for i in idx)), nbytes))
    return tuple(out)


def simulate(program: Program, layers: dict[str, str], macs: dict[str, int] | None = None,
             bits: dict[str, tuple[int, int]] | None = None,
             progress: bool = False) -> tuple[bytes, SimStats]:
    """Run ``program``; return the final memory image and the statistics. ``layers`` maps the
    name of each SYNC-separated segment to its op, in program order."""
    start, end = schedule_times(program)
    check_hazards(program, start, end)
    state = MachineState(program.memory)
    order = np.lexsort((np.arange(len(start)), start))
    for idx in tqdm(order, desc="simulate", disable=not progress, leave=False, unit="instr"):
        state.apply(program.instructions[idx])
    stats = SimStats(program.config.name, program.config.clock_mhz, int(end.max(initial=0)),
                     _layer_stats(program, start, end, layers, macs or {}, bits or {}),
                     _class_stats(program, start, end))
    return bytes(state.dram), stats
