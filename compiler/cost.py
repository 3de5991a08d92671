"""Cost model: estimated cycles of a layer schedule from the machine's timing model.

The estimate assumes perfect overlap of the three queues within a layer (the slowest unit
bounds it) plus the first input band's load and the last band's store, which may not overlap the
layer's compute (they often overlap the neighbouring layers instead: a load waits only for the
store that wrote its bytes), so it is an upper bound for a layer on its own. The cycle-accurate
simulator measures the same quantities with the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bitmill import timing
from bitmill.config import AccelConfig


@dataclass(frozen=True)
class CostEstimate:
    """Estimated cycles per unit and in total for one layer (same names as `SimStats`)."""

    name: str
    load_cycles: int
    compute_cycles: int
    store_cycles: int
    cycles: int


def estimate(ls, cfg: AccelConfig, out_w: int) -> CostEstimate:
    """Cycles of one layer schedule."""
    loads = (ls.weight_bytes, ls.act_bytes, ls.param_bytes)
    w_loads = 1 if ls.weights_resident or ls.channel_tiles == 1 else ls.channel_tiles * ls.bands
    transfers = ls.bands + (w_loads if ls.kind == "gemm" else 0) + 1
    load = sum(-(-b // cfg.mem_bytes_per_cycle) for b in loads) + transfers * cfg.mem_latency
    store = -(-ls.out_bytes // cfg.mem_bytes_per_cycle) + ls.bands * cfg.mem_latency
    if ls.kind == "gemm":
        pix = ls.band_rows * out_w
        compute = ls.bands * sum(timing.gemm_cycles(cfg, pix, ls.k_total, ls.w_bits, ls.a_bits, n * cfg.rows)
                                 for n in ls.gemm_split)
    else:
        compute = ls.bands * timing.vec_cycles(cfg, ls.out_buffer_use * 8)
    first = timing.mem_cycles(cfg, ls.act_buffer_use) if ls.kind != "alias" else 0
    last = timing.mem_cycles(cfg, ls.out_buffer_use) if ls.kind != "alias" else 0
    total = max(load, compute, store) + first + last if ls.kind != "alias" else 0
    return CostEstimate(ls.name, load, compute, store, total)


def with_estimate(ls, cfg: AccelConfig, out_w: int):
    """The layer schedule with its ``est_cycles`` filled in."""
    return replace(ls, est_cycles=estimate(ls, cfg, out_w).cycles)
