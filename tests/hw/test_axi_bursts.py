# amaranth: UnusedElaboratable=no
"""`first_burst_of_bytes` against `first_burst` of the same transfer (the beats computed
first): every register equal, at every alignment, near every boundary, on Amaranth's
simulator."""

from __future__ import annotations

import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from bitmill.hw.axi import BURST_BOUNDARY, MAX_BURST_BEATS
from bitmill.hw.axi_bursts import first_burst, first_burst_of_bytes

ADDR_BITS = 20


def _cases(lg: int, count: int, nbytes_bits: int) -> list[tuple[int, int]]:
    """(byte address, byte count) pairs: every alignment next to 4 KiB boundaries and the
    256-beat cap, then random ones."""
    b, rng = 1 << lg, random.Random(lg)
    cap = MAX_BURST_BEATS * b
    addrs = [page * BURST_BOUNDARY + off for page in (0, 3) for base in (0, BURST_BOUNDARY - cap)
             for off in (base + d for d in range(-2 * b, 2 * b) if 0 <= base + d < BURST_BOUNDARY)]
    addrs += [BURST_BOUNDARY - d for d in range(1, 3 * b)]
    counts = [1, 2, b - 1, b, b + 1, cap - b - 1, cap - 1, cap, cap + 1, cap + b, BURST_BOUNDARY - 1,
              BURST_BOUNDARY, BURST_BOUNDARY + 1, (1 << nbytes_bits) - 1]
    cases = [(a, n) for a in addrs for n in counts if 1 <= n < 1 << nbytes_bits]
    cases += [(a, n) for a in addrs for n in (BURST_BOUNDARY - a % BURST_BOUNDARY + d for d in range(-b, b + 1))
              if 1 <= n < 1 << nbytes_bits]
    cases += [(rng.randrange(1 << ADDR_BITS), rng.randrange(1, 1 << nbytes_bits)) for _ in range(count)]
    return cases


@pytest.mark.parametrize("nbytes_bits", [10, 17])
@pytest.mark.parametrize("lg", [0, 1, 2, 3, 4])
def test_the_first_burst_of_bytes_equals_the_first_burst_of_its_beats(lg, nbytes_bits):
    """Byte counts as wide as a large buffer's and as a small one's (narrower than a burst)."""
    b = 1 << lg
    m = Module()
    addr, nbytes = Signal(ADDR_BITS), Signal(nbytes_bits)
    aligned = Signal(ADDR_BITS)
    m.d.comb += aligned.eq(addr & ((1 << ADDR_BITS) - b))
    total = ((addr[:lg] if lg else 0) + nbytes + b - 1) >> lg
    want = first_burst(m, aligned, total, lg, "want")
    got = first_burst_of_bytes(m, addr, nbytes, lg, "got")
    cases = _cases(lg, 400, nbytes_bits)
    seen = []

    async def bench(ctx):
        for a, n in cases:
            ctx.set(addr, a)
            ctx.set(nbytes, n)
            await ctx.tick()
            seen.append(((a, n), {k: ctx.get(v) for k, v in want.items()},
                         {k: ctx.get(v) for k, v in got.items()}))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(seen) == len(cases)
    bad = [(case, w, g) for case, w, g in seen if w != g]
    assert not bad, f"{len(bad)} of {len(seen)} differ, first: {bad[0]}"
    beats = {w["beats"] for _, w, _ in seen}
    assert 1 in beats and (MAX_BURST_BEATS in beats or (MAX_BURST_BEATS << lg) >= 1 << nbytes_bits
                           or lg > 3)       # both clamps exercised where the count reaches them
