# amaranth: UnusedElaboratable=no
"""PE corner cases in Amaranth's simulator: every step sequence is checked against a plain
Python model of the Horner accumulation."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from bitmill.hw.pe import BitParallelPE, BitSerialPE, make_pe
from bitmill.timing import pe_stages

LANES = 8


def model(steps, acc_width: int) -> list[int]:
    """The accumulator after each step (wrapped to ``acc_width``)."""
    acc, out = 0, []
    for w, a, c in steps:
        if "mul" in c:
            term = sum(x * y for x, y in zip(w, a))
        else:
            both = [x & y for x, y in zip(w, a)]
            term = 2 * sum(both) - sum(a) if c.get("bipolar") else sum(both)
        base = 0 if c.get("first") else (2 * acc if c.get("shift") else acc)
        acc = base - term if c.get("neg") else base + term
        acc = (acc + (1 << (acc_width - 1))) % (1 << acc_width) - (1 << (acc_width - 1))
        out.append(acc)
    return out


def run_pe(pe, steps) -> tuple[list[int], list[int]]:
    """Feed one step per cycle; return acc after each step and the cycles where done was high."""
    accs, done = [], []

    async def bench(ctx):
        for n in range(len(steps) + pe.latency):
            if n < len(steps):
                w, a, c = steps[n]
                ctrl = {k: int(c.get(k, 0)) for k in ("first", "last", "shift", "neg", "bipolar")}
                ctx.set(pe.w, w)
                ctx.set(pe.a, a)
                ctx.set(pe.ctrl, {"valid": 1, **ctrl})
            else:
                ctx.set(pe.ctrl, {"valid": 0, "first": 0, "last": 0, "shift": 0, "neg": 0,
                                  "bipolar": 0})
            await ctx.tick()
            if n + 1 >= pe.latency:
                accs.append(ctx.get(pe.acc))
                if ctx.get(pe.done):
                    done.append(n + 1 - pe.latency)

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return accs[:len(steps)], done


def _bits(x: int) -> list[int]:
    return [(x >> k) & 1 for k in range(LANES)]


def test_bitserial_corners():
    ones, zeros, alt = _bits(0xFF), _bits(0), _bits(0x55)
    steps = [(ones, ones, {"first": 1}), (ones, ones, {"shift": 1}),
             (ones, ones, {"neg": 1}), (zeros, ones, {"bipolar": 1}),
             (ones, ones, {"bipolar": 1, "shift": 1}), (alt, ones, {"bipolar": 1, "neg": 1}),
             (zeros, zeros, {"shift": 1}), (alt, _bits(0xAA), {"last": 1}),
             (ones, ones, {"first": 1, "neg": 1, "last": 1})]
    pe = BitSerialPE(LANES, 12)
    accs, done = run_pe(pe, steps)
    assert accs == model(steps, 12)
    assert done == [7, 8]


@pytest.mark.parametrize("cells", [None, "model"])
def test_bitserial_random_horner(cells):
    rng = np.random.default_rng(1)
    steps = [(rng.integers(0, 2, LANES).tolist(), rng.integers(0, 2, LANES).tolist(),
              {k: bool(rng.integers(0, 2)) for k in ("shift", "neg", "bipolar")})
             for _ in range(60)]
    steps[0][2]["first"] = True
    accs, _ = run_pe(BitSerialPE(LANES, 30, cells), steps)
    assert accs == model(steps, 30)


def test_bitparallel_extremes():
    lo, hi = -256, 255
    steps = [([lo] * LANES, [lo] * LANES, {"first": 1, "mul": 1}),
             ([hi] * LANES, [lo] * LANES, {"mul": 1}),
             ([lo, hi] * (LANES // 2), [hi] * LANES, {"mul": 1, "last": 1})]
    pe = BitParallelPE(LANES, 24)
    accs, done = run_pe(pe, steps)
    assert accs == model(steps, 24)
    assert done == [2]


@pytest.mark.parametrize("family,lanes,latency", [("bitserial", 8, 4), ("bitserial", 32, 5),
                                                  ("bitparallel", 8, 5), ("bitparallel", 64, 6)])
def test_latency(family, lanes, latency):
    pe = make_pe(family, lanes, 20)
    assert pe.latency == pe_stages(family, lanes) == latency


@pytest.mark.parametrize("args,message", [
    (("bitserial", 0, 20), "lanes must be a positive integer, not 0"),
    (("bitserial", 8, 0), "acc_width must be a positive integer, not 0"),
    (("bitserial", 8, 65), "acc_width must be at most 64, not 65"),
    (("systolic", 8, 20), "family must be one of bitserial, bitparallel, not 'systolic'"),
])
def test_bad_parameters(args, message):
    with pytest.raises(ValueError, match=message):
        make_pe(*args)
