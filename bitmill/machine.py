"""The accelerator's timing model: cycles of every instruction, one definition for the
compiler's cost model, the cycle-accurate simulator and (later) the RTL.

* LOAD / STORE: ``mem_latency + ceil(nbytes / mem_bytes_per_cycle)``.
* SETUP: 1 cycle (register writes).
* GEMM: ``tiles * period + pipeline_latency + cols + REQUANT_PIPE`` with
  ``tiles = ceil(channels / rows) * ceil(npix / cols)`` and ``period = max(tile - pipeline_latency, cols)``, where
  ``tile = timing.tile_cycles(...)`` for ``K = kernel^2 * in_c`` and ``pipeline_latency =
  timing.pipeline_latency(...)``. The array's operand fetch streams the tiles of one GEMM back
  to back (a tile's first chunk enters the pipeline the cycle after the previous tile's last
  chunk; a first-chunk flag travelling with it makes the accumulate stage overwrite instead of
  add and move the finished tile into the shadow registers), so only the last tile pays the
  pipeline fill. The requant unit drains the shadow registers one array column per cycle while
  the next tile computes, so a tile occupies at least ``cols`` cycles; the last tile drains
  (``cols + REQUANT_PIPE``) after the array finishes. A one-tile GEMM therefore takes
  ``max(tile, cols + pipeline_latency) + cols + REQUANT_PIPE``.
* VEC: the vector unit handles ``rows`` elements per cycle: ``ceil(work / rows) + VEC_PIPE`` with
  work = output elements (ADD), output elements * kernel^2 (MAXPOOL), input elements (AVGPOOL).

The three queues (load, compute, store) run in order; an instruction starts when its queue is
free and every token it pops has been pushed (a token is available from the end of the pushing
instruction).
"""

from __future__ import annotations

from bitmill import timing
from bitmill.config import AccelConfig

REQUANT_PIPE = 3
VEC_PIPE = 4
SETUP_CYCLES = 1
PARAM_SLOT_BYTES = 16 * 1024       # each of the requant table's two slots


def slot_bytes(cfg: AccelConfig, buffer: int) -> int:
    """Bytes of one slot (half) of a buffer (`bitmill.isa.Buffer` value): weight, activation,
    requant table, output."""
    return (cfg.weight_buffer_bytes // 2, cfg.act_buffer_bytes // 2, PARAM_SLOT_BYTES,
            cfg.out_buffer_bytes // 2)[buffer]


def mem_cycles(cfg: AccelConfig, nbytes: int) -> int:
    """Cycles of a LOAD or STORE of ``nbytes``."""
    return cfg.mem_latency + -(-nbytes // cfg.mem_bytes_per_cycle)


def gemm_tile_cycles(cfg: AccelConfig, k_total: int, w_bits: int, a_bits: int) -> int:
    """Cycles between the starts of consecutive array tiles of a GEMM (the tile's chunks, at
    least the column drain of the previous tile)."""
    t = timing.tile_cycles(cfg.pe_family, cfg.lanes, k_total, w_bits, a_bits)
    return max(t - timing.pipeline_latency(cfg.pe_family, cfg.lanes), cfg.cols)


def gemm_cycles(cfg: AccelConfig, npix: int, k_total: int, w_bits: int, a_bits: int,
                channels: int | None = None) -> int:
    """Cycles of a GEMM instruction over ``npix`` output pixels and ``channels`` output channels
    (default: one channel tile)."""
    tiles = -(-(cfg.rows if channels is None else channels) // cfg.rows) * -(-npix // cfg.cols)
    return (tiles * gemm_tile_cycles(cfg, k_total, w_bits, a_bits)
            + timing.pipeline_latency(cfg.pe_family, cfg.lanes) + cfg.cols + REQUANT_PIPE)


def vec_cycles(cfg: AccelConfig, work: int) -> int:
    """Cycles of a VEC instruction over ``work`` element operations."""
    return -(-work // cfg.rows) + VEC_PIPE


def peak_macs_per_cycle(cfg: AccelConfig, w_bits: int, a_bits: int) -> float:
    """MACs per cycle of the whole array at this precision (ideal, no padding)."""
    per_pe = cfg.lanes / (w_bits * a_bits if cfg.pe_family == "bitserial" else 1)
    return cfg.rows * cfg.cols * per_pe
