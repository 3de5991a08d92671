"""`SimStats`: what the cycle-accurate simulator measured, per layer and per instruction class.

Field names match `bitmill.compiler.cost.CostEstimate` (``load_cycles``, ``compute_cycles``,
``store_cycles``, ``cycles``); how the estimate relates to these measurements, field by field,
is `bitmill.compiler.cost.RELATION`.

Layers overlap (the next layer's loads run while this one computes), so a layer's cycles are
measured on the compute unit: from the end of the previous layer's last compute instruction to
the end of its own (the last layer also counts its final stores). The span is exactly the
layer's compute busy cycles plus the cycles the compute queue waited for a load token
(``wait_load``) or a store token (``wait_store``); the layer spans add up to the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from bitmill import timing
from bitmill.isa import QUEUE_OF, Gemm, Opcode, Queue, Segment, Setup


@dataclass(frozen=True)
class LayerStats:
    """One layer: busy cycles per unit, wall cycles, bytes, MAC utilisation."""

    name: str
    op: str
    start: int
    end: int
    load_cycles: int
    compute_cycles: int
    store_cycles: int
    bytes_loaded: int
    bytes_stored: int
    macs: int
    mac_utilisation: float     # useful MACs / (cycles * peak MACs per cycle at the layer's bits)
    compute_busy: float        # compute_cycles / cycles
    wait_load: int = 0         # compute idle, waiting for a LOAD
    wait_store: int = 0        # compute idle, waiting for a STORE (a free output slot, DRAM data)
    gemm_limit: str = ""       # GEMM layers: what bounds the compute unit's pixel tiles (`timing.gemm_limit`)

    @property
    def cycles(self) -> int:
        return self.end - self.start

    @property
    def bottleneck(self) -> str:
        """The unit the layer's cycles went to most: computing, or waiting for loads or stores."""
        units = {"compute": self.compute_cycles, "load": self.wait_load, "store": self.wait_store}
        return max(units, key=units.get)


@dataclass(frozen=True)
class ClassStats:
    """One instruction class (opcode): count, busy cycles, bytes."""

    opcode: str
    count: int
    busy_cycles: int
    bytes: int


@dataclass(frozen=True)
class SimStats:
    """A whole run."""

    config: str
    clock_mhz: float
    cycles: int
    layers: tuple[LayerStats, ...]
    classes: tuple[ClassStats, ...]
    preload: int = 0          # cycles before the first instruction starts (program preload)

    @property
    def milliseconds(self) -> float:
        return self.cycles / (self.clock_mhz * 1e3)

    def to_dict(self) -> dict:
        d = asdict(self)
        for layer, ls in zip(d["layers"], self.layers):
            layer["cycles"], layer["bottleneck"] = ls.cycles, ls.bottleneck
        d["milliseconds"] = self.milliseconds
        return d


def _segments(program, n: int) -> tuple[list[str], np.ndarray]:
    segs = program.segments or (Segment("program", 0),)
    firsts = [s.first for s in segs]
    return [s.layer for s in segs], np.searchsorted(firsts, np.arange(n), side="right") - 1


_QUEUE_OF_OP = np.array([QUEUE_OF[op].value for op in sorted(QUEUE_OF, key=lambda o: o.value)])


@dataclass(frozen=True, eq=False)
class Timing:
    """Per instruction: opcode value, bytes moved, start and end cycle, the cycles its queue
    stood idle before it, and what it waited for (0 nothing, 1 load, 2 store, 3 compute)."""

    op: np.ndarray
    nbytes: np.ndarray
    start: np.ndarray
    end: np.ndarray
    idle: np.ndarray
    waited: np.ndarray


def layer_stats(program, t: Timing, ops: dict, macs_of: dict, bits_of: dict) -> tuple[LayerStats, ...]:
    """Per-layer statistics from the instruction timings (see the module docstring)."""
    names, seg = _segments(program, len(program.instructions))
    if program.segments and len(names) != len(ops):
        raise ValueError(f"program has {len(names)} layers, {len(ops)} names given")
    queue, lat, k = _QUEUE_OF_OP[t.op], t.end - t.start, len(names)

    def per_layer(mask, values) -> np.ndarray:
        return np.bincount(seg[mask], weights=values[mask], minlength=k).astype(np.int64)

    comp = queue == Queue.COMPUTE.value
    busy = [per_layer(queue == q.value, lat) for q in Queue]
    wait_l, wait_s = per_layer(comp & (t.waited == 1), t.idle), per_layer(comp & (t.waited == 2), t.idle)
    t1 = np.zeros(k, np.int64)
    np.maximum.at(t1, seg[comp], t.end[comp])
    t1 = np.maximum.accumulate(t1)
    total = int(t.end.max(initial=0))
    wait_s[-1] += total - t1[-1]
    t1[-1] = total
    t0 = np.r_[int(t.start.min()) if len(t.start) else 0, t1[:-1]]
    limits = _gemm_limits(program, seg, k)
    loaded = per_layer(t.op == Opcode.LOAD.value, t.nbytes)
    stored = per_layer(t.op == Opcode.STORE.value, t.nbytes)
    out = []
    for j, name in enumerate(names):
        span = max(1, int(t1[j] - t0[j]))
        macs = macs_of.get(name, 0)
        w, a = bits_of.get(name, (8, 8))
        util = macs / (span * timing.peak_macs_per_cycle(program.config, w, a)) if macs else 0.0
        load, compute, store = (int(b[j]) for b in busy)
        out.append(LayerStats(name, ops.get(name, ""), int(t0[j]), int(t1[j]), load, compute, store, int(loaded[j]), int(stored[j]), macs,
                              util, compute / span, int(wait_l[j]), int(wait_s[j]), limits[j]))
    return tuple(out)


def _gemm_limits(program, seg: np.ndarray, k: int) -> list[str]:
    """Per layer with a GEMM, `timing.gemm_limit` under the layer registers of its SETUP."""
    setup, limits = None, [""] * k
    for i, ins in enumerate(program.instructions):
        if isinstance(ins, Setup):
            setup = ins
        elif isinstance(ins, Gemm) and setup is not None and not limits[seg[i]]:
            limits[seg[i]] = timing.gemm_limit(program.config, setup.out_c, setup.kernel, setup.in_c,
                                               setup.in_w, setup.w_bits, setup.a_bits)
    return limits


def class_stats(t: Timing) -> tuple[ClassStats, ...]:
    """Count, busy cycles and bytes per opcode."""
    out = []
    for op in Opcode:
        m = t.op == op.value
        if m.any():
            out.append(ClassStats(op.name, int(m.sum()), int((t.end - t.start)[m].sum()), int(t.nbytes[m].sum())))
    return tuple(out)
