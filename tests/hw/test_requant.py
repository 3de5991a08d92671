# amaranth: UnusedElaboratable=no
"""The requant pipeline in Amaranth's simulator: every output equals
`bitmill.numerics.requantize`, exactly `Requantizer.latency` cycles after its input."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from bitmill import numerics
from bitmill.hw.requant import LATENCY, Requantizer, acc_chunks
from bitmill.timing import REQUANT_LATENCY

BOUND = 1 << 62          # the caller guarantees |acc*M + B| < 2^62


def reference(case: dict) -> int:
    """`numerics.requantize` of one input."""
    lo, hi = numerics.value_range(case["bits"], "signed" if case["signed"] else "unsigned")
    if case["relu"]:
        lo = max(lo, 0)
    out = numerics.requantize(np.array([[case["acc"]]], np.int64), [case["m"]], [case["b"]],
                              [case["n"]], (lo, hi))
    return int(out[0, 0])


def random_case(rng: random.Random, acc_bits: int) -> dict:
    """Operands of random magnitudes with ``|acc*M + B| < 2^62``; about half of them land
    inside the output range after the shift, the rest clamp."""
    amax = 1 << (acc_bits - 1)
    while True:
        acc = rng.choice([-amax, amax - 1, 0, rng.randint(-amax, amax - 1),
                          rng.randint(-1, 1) * rng.getrandbits(rng.randint(0, acc_bits - 1))])
        m = rng.choice([-(1 << 15), (1 << 15) - 1, rng.randint(-(1 << 15), (1 << 15) - 1),
                        rng.randint(-1, 1) * rng.getrandbits(rng.randint(0, 15))])
        prod = acc * m
        if abs(prod) < BOUND:
            break
    b = rng.choice([0, rng.randint(-BOUND + 1 - min(prod, 0), BOUND - 1 - max(prod, 0)),
                    rng.randint(-1, 1) * rng.getrandbits(rng.randint(0, 61))])
    if not abs(prod + b) < BOUND:
        b = 0
    x = abs(prod + b)
    bits = rng.randint(1, numerics.MAX_BITS)
    near = max(0, x.bit_length() - bits + rng.randint(-2, 2))  # a shift that keeps the value near the range
    n = min(numerics.MAX_SHIFT, rng.choice([near, rng.randint(0, numerics.MAX_SHIFT)]))
    return {"acc": acc, "m": m, "b": b, "n": n, "bits": bits, "signed": rng.random() < 0.5,
            "relu": rng.random() < 0.3}


def edge_cases(acc_bits: int) -> list[dict]:
    """Extremes: largest products and biases within the bound, every shift, rounding ties."""
    amax = 1 << (acc_bits - 1)
    cases = []
    for bits in range(1, numerics.MAX_BITS + 1):
        for sgn in (0, 1):
            for relu in (0, 1):
                for n, x in ((0, (1 << (bits - 1)) - 1), (1, -1), (2, 6), (2, -6), (3, 4), (3, -4)):
                    cases.append({"acc": 1, "m": 1, "b": x - 1, "n": n, "bits": bits,
                                  "signed": sgn, "relu": relu})
    for n in range(numerics.MAX_SHIFT + 1):
        for acc, m, b in ((amax - 1, (1 << 15) - 1, 0), (-amax, -(1 << 15), 0),
                          (-amax, (1 << 15) - 1, 0), (0, 0, BOUND - 1), (0, 0, -BOUND + 1),
                          (1, 1, (1 << n) // 2 - 1), (0, 0, -(1 << n) // 2), (0, 0, (1 << n) // 2)):
            if abs(acc * m) >= BOUND:
                acc = (BOUND - 1) // abs(m) * (1 if acc > 0 else -1)
            cases.append({"acc": acc, "m": m, "b": b, "n": n, "bits": 1 + n % numerics.MAX_BITS,
                          "signed": n % 2, "relu": n % 3 == 0})
    return cases


def run(dut: Requantizer, cases: list[dict], gaps: list[int] | None = None):
    """Present ``cases[i]`` (tagged ``i``) in cycle ``starts[i]``; return the start cycles and
    the (cycle, tag, value) of every output."""
    gaps = gaps or [0] * len(cases)
    starts, t = [], 0
    for g in gaps:
        t += g
        starts.append(t)
        t += 1
    outs = []

    async def bench(ctx):
        queue = dict(zip(starts, range(len(cases))))
        for cycle in range(t + LATENCY + 2):
            i = queue.get(cycle)
            ctx.set(dut.valid, i is not None)
            if i is not None:
                c = cases[i]
                ctx.set(dut.acc, c["acc"])
                ctx.set(dut.multiplier, c["m"])
                ctx.set(dut.bias, c["b"])
                ctx.set(dut.shift, c["n"])
                ctx.set(dut.out_bits, c["bits"] - 1)
                ctx.set(dut.out_signed, c["signed"])
                ctx.set(dut.relu, c["relu"])
                ctx.set(dut.tag, i)
            await ctx.tick()
            if ctx.get(dut.out_valid):
                outs.append((cycle + 1, ctx.get(dut.out_tag), ctx.get(dut.value)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return starts, outs


def check(acc_bits: int, cases: list[dict], gaps=None) -> None:
    dut = Requantizer(acc_bits, tag_bits=16)
    starts, outs = run(dut, cases, gaps)
    assert [tag for _, tag, _ in outs] == list(range(len(cases)))       # in order, none lost
    assert [cycle for cycle, _, _ in outs] == [s + dut.latency for s in starts]
    assert [v for _, _, v in outs] == [reference(c) for c in cases]


@pytest.mark.parametrize("acc_bits", [8, 18, 19, 32, 35, 52, 64])
def test_random_back_to_back(acc_bits):
    rng = random.Random(acc_bits)
    check(acc_bits, [random_case(rng, acc_bits) for _ in range(1500)])


@pytest.mark.parametrize("acc_bits", [24, 64])
def test_edge_cases(acc_bits):
    check(acc_bits, edge_cases(acc_bits))


def test_every_output_range_with_gaps():
    rng = random.Random(5)
    cases, gaps = [], []
    for bits in range(1, numerics.MAX_BITS + 1):
        for sgn in (0, 1):
            for relu in (0, 1):
                for _ in range(6):
                    c = random_case(rng, 40)
                    c.update(bits=bits, signed=sgn, relu=relu)
                    cases.append(c)
                    gaps.append(rng.choice([0, 0, 0, 1, 3]))
    check(40, cases, gaps)


def test_latency_and_chunks():
    assert Requantizer(32).latency == LATENCY == REQUANT_LATENCY == 10
    assert acc_chunks(18) == [(0, 18)]
    assert acc_chunks(32) == [(0, 17), (17, 15)]
    assert acc_chunks(64) == [(0, 17), (17, 17), (34, 17), (51, 13)]


@pytest.mark.parametrize("kwargs,message", [
    ({"acc_bits": 7}, "acc_bits must be an integer in 8..64, not 7"),
    ({"acc_bits": 65}, "acc_bits must be an integer in 8..64, not 65"),
    ({"acc_bits": 32.0}, "acc_bits must be an integer in 8..64, not 32.0"),
    ({"acc_bits": 32, "tag_bits": -1}, "tag_bits must be a non-negative integer, not -1"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Requantizer(**kwargs)
