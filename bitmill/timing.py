"""Cycle count of one GEMM tile on the MAC array: the one formula shared by the RTL
(``bitmill.hw``), the compiler's cost model and the cycle-accurate simulator.

A tile multiplies ``R x K_total`` weights by ``K_total x C`` activations on an ``R x C`` array
whose PEs each reduce ``K`` lanes per cycle. ``K_total`` is processed in
``chunks = ceil(K_total / K)`` lane groups (the last one zero-padded).

* ``bitserial``: each cycle a PE ANDs one K-lane weight bit-plane with one K-lane activation
  bit-plane and adds the weighted popcount, so a chunk takes ``w_bits * a_bits`` cycles.
  Plane pairs are visited by descending significance ``i + j`` (MSB first): the accumulator
  doubles when the significance drops by one, so only a 1-bit shift is needed.
* ``bitparallel``: each cycle a PE multiplies K full-width pairs, so a chunk takes 1 cycle.

Every PE works in parallel, so the count does not depend on R or C::

    tile_cycles = chunks * passes + pipeline_latency(family, K)

where ``passes = w_bits * a_bits`` (bitserial) or ``1`` (bitparallel) and the pipeline latency
is the fill/drain of the operand, popcount/adder-tree, term and accumulate stages below. The RTL must
take exactly this many cycles from tile start to results valid; tests check it.
"""

from __future__ import annotations

import math

PE_FAMILIES = ("bitserial", "bitparallel")
FETCH_STAGES = 3        # operand fetch: buffer address, block RAM read data, broadcast register


def adder_tree_stages(lanes: int) -> int:
    """Pipeline registers in a popcount / adder tree over ``lanes`` inputs: one register
    after every two adder levels."""
    if lanes < 1:
        raise ValueError(f"lanes must be a positive integer, not {lanes}")
    levels = math.ceil(math.log2(lanes)) if lanes > 1 else 0
    return max(1, math.ceil(levels / 2))


def pipeline_latency(family: str, lanes: int) -> int:
    """Fill/drain cycles of one tile: operand fetch (`FETCH_STAGES`), optional multiply
    stage (bitparallel, 1), adder tree (`adder_tree_stages`), signed term (1), accumulate (1)."""
    if family not in PE_FAMILIES:
        raise ValueError(f"family must be one of {', '.join(PE_FAMILIES)}, not {family!r}")
    return FETCH_STAGES + (1 if family == "bitparallel" else 0) + adder_tree_stages(lanes) + 2


def passes_per_chunk(family: str, w_bits: int, a_bits: int) -> int:
    """Cycles a PE spends on one K-lane chunk."""
    for name, bits in (("w_bits", w_bits), ("a_bits", a_bits)):
        if not 1 <= bits <= 8:
            raise ValueError(f"{name} must be in 1..8, not {bits}")
    return w_bits * a_bits if family == "bitserial" else 1


def tile_cycles(family: str, lanes: int, k_total: int, w_bits: int, a_bits: int) -> int:
    """Cycles of one GEMM tile from start to all accumulators valid."""
    if k_total < 1:
        raise ValueError(f"k_total must be a positive integer, not {k_total}")
    chunks = -(-k_total // lanes)
    return chunks * passes_per_chunk(family, w_bits, a_bits) + pipeline_latency(family, lanes)
