"""Cost model: the cycles of one layer from the machine's timing model (`bitmill.timing`).

The lowering lists the instructions code generation emits for a layer (`LayerWork`: every LOAD
and STORE, the cycles of every SETUP, GEMM and VEC) and `estimate` adds them up per queue. A
transfer's cycles depend on its bytes and on the alignment of its DRAM address and slot offset
to the memory beat; every DRAM region starts on a 64-byte boundary (`compiler.dram.ALIGN`, a
multiple of every beat width), so the byte position inside the region gives the alignment. How the estimate relates to what the cycle-accurate simulator measures for the
layer (`bitmill.sim.stats.LayerStats`, same field names) is `RELATION`; tests check it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bitmill import isa, timing
from bitmill.config import AccelConfig
from bitmill.geometry import Band
from bitmill.isa import Buffer

RELATION = (
    "Per layer, the estimate's load_cycles and store_cycles equal the simulated load and store "
    "busy cycles of the layer exactly (the cost model lists the same LOADs and STOREs as code "
    "generation and times each with bitmill.timing), and so do its bytes (traffic loaded and out "
    "equal the simulated bytes loaded and stored). Its compute_cycles equal the simulated compute "
    "busy cycles minus one cycle per SYNC in the layer: code generation adds a SYNC where a LOAD "
    "reads bytes an earlier layer's STORE wrote and no compute instruction is yet known to follow "
    "that store, which the cost model, pricing a layer without its neighbours, does not see. The "
    "estimate's cycles are load + compute + store: an upper bound of the layer run on its own, "
    "because every queue waits only for an instruction of another queue, so at every cycle one "
    "of the layer's instructions runs. In a network the layer's simulated cycles (from the end "
    "of the previous layer's last compute instruction to the end of its own) lie between "
    "compute_cycles + SYNC cycles and cycles + SYNC cycles + the busy cycles of the last two "
    "STOREs of earlier layers (one per output slot, the only ones that can still be running "
    "when the layer begins). The simulated run is the sum of the layers' cycles; it is usually "
    "below the sum of the estimates because the simulator overlaps each layer's transfers with "
    "computing, and a layer's first loads with the previous layer."
)


@dataclass(frozen=True)
class CostEstimate:
    """Cycles of one layer per queue, and the queues' sum (names as in `LayerStats`)."""

    load_cycles: int = 0
    compute_cycles: int = 0
    store_cycles: int = 0
    cycles: int = 0


@dataclass(frozen=True)
class LayerWork:
    """The instructions of one layer as the cost model sees them: every LOAD as (byte position
    in its DRAM region, slot offset, bytes), the cycles of every SETUP, GEMM and VEC (SYNCs
    excepted), every STORE as (byte position in its region, bytes)."""

    loads: tuple[tuple[int, int, int], ...] = ()
    compute_cycles: tuple[int, ...] = ()
    stores: tuple[tuple[int, int], ...] = ()


def estimate(work: LayerWork, cfg: AccelConfig) -> CostEstimate:
    """Busy cycles of each queue over ``work``, and their sum."""
    load = sum(timing.load_cycles(cfg, pos, offset, n) for pos, offset, n in work.loads)
    compute = sum(work.compute_cycles)
    store = sum(timing.store_cycles(cfg, pos, n) for pos, n in work.stores)
    return CostEstimate(load, compute, store, load + compute + store)


def _stores(bands: tuple[Band, ...], out_pitch: int) -> tuple[tuple[int, int], ...]:
    return tuple((b.y0 * out_pitch, b.rows * out_pitch) for b in bands)


def gemm_work(cfg: AccelConfig, bands: tuple[Band, ...], out_w: int, in_pitch: int, out_pitch: int,
              geometry: tuple[int, int, int, int], w_bits: int, a_bits: int, split: tuple[int, ...],
              weight_loads: tuple[int, ...], param_bytes: int, tile_rows: int | None = None) -> LayerWork:
    """A GEMM layer (``geometry``: kernel, input channels, input row width, output channels):
    its requant table, every band's input rows and ``weight_loads`` (bytes of every weight
    LOAD, each a region of its own); per band a SETUP and one GEMM per entry of ``split``
    (channel tiles of ``tile_rows`` channels, default the array's rows)."""
    rows = cfg.rows if tile_rows is None else tile_rows
    kernel, in_c, in_w, out_c = geometry
    computes = []
    for band in bands:
        computes.append(timing.SETUP_CYCLES)
        o0 = 0
        for n in split:
            channels = min(n * rows, out_c - o0)
            computes.append(timing.gemm_cycles(cfg, band.rows * out_w, channels, kernel, in_c, in_w,
                                               w_bits, a_bits))
            o0 += n * rows
    loads = (((0, 0, param_bytes),) + tuple((b.r0 * in_pitch, 0, b.in_rows * in_pitch) for b in bands)
             + tuple((0, 0, w) for w in weight_loads))
    return LayerWork(loads, tuple(computes), _stores(bands, out_pitch))


def vec_work(cfg: AccelConfig, bands: tuple[Band, ...], in_pitches: tuple[int, ...], out_pitch: int,
             vec_cycles: tuple[int, ...], param_bytes: int) -> LayerWork:
    """A vector layer: its constants (none when ``param_bytes`` is 0) and per band the input
    rows of every operand (pitches ``in_pitches``; operand ``k`` at ``k`` half slots), a SETUP
    and a VEC of ``vec_cycles`` (per band; `bitmill.timing.vec_unit_cycles`)."""
    half = isa.slot_bytes(cfg, Buffer.ACT) // 2
    loads = ((0, 0, param_bytes),) if param_bytes else ()
    loads += tuple((b.r0 * p, k * half, b.in_rows * p) for b in bands for k, p in enumerate(in_pitches))
    computes = tuple(c for v in vec_cycles for c in (timing.SETUP_CYCLES, v))
    return LayerWork(loads, computes, _stores(bands, out_pitch))
