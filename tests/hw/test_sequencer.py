# amaranth: UnusedElaboratable=no
"""The sequencer's step stream against a reference enumeration of the plane order."""

import pytest
from amaranth.sim import Simulator

from bitmill.hw.sequencer import TileSequencer, chunk_slots
from bitmill.numerics import Encoding


def reference(wb, ab, chunks, w_enc, a_signed, slots):
    """(w_addr, a_addr, first, last, shift, neg, bipolar) of every step."""
    steps = []
    for s in range(wb + ab - 2, -1, -1):
        pairs = [(i, s - i) for i in range(wb) if 0 <= s - i < ab]
        for n, (i, j) in enumerate(pairs):
            for c in range(chunks):
                neg = (w_enc == Encoding.SIGNED and i == wb - 1) ^ (a_signed and j == ab - 1)
                steps.append((i * slots + c, j * slots + c, 0, 0,
                              int(s < wb + ab - 2 and n == 0 and c == 0), int(neg),
                              int(w_enc == Encoding.ODD)))
    steps[0] = steps[0][:2] + (1,) + steps[0][3:]
    steps[-1] = steps[-1][:3] + (1,) + steps[-1][4:]
    return steps


def run_sequencer(seq, commands):
    got = []

    async def bench(ctx):
        for cmd in commands:
            ctx.set(seq.cmd.payload, cmd)
            ctx.set(seq.cmd.valid, 1)
            await ctx.tick()
            ctx.set(seq.cmd.valid, 0)
            steps = []
            for _ in range(8 * 8 * 4 + 4):
                addr = (ctx.get(seq.w_addr), ctx.get(seq.a_addr))   # control follows a cycle later
                await ctx.tick()
                c = ctx.get(seq.ctrl)
                if c.valid:
                    steps.append((*addr, c.first, c.last, c.shift, c.neg, c.bipolar))
                if c.last:
                    break
            assert not ctx.get(seq.busy)
            got.append(steps)

    sim = Simulator(seq)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


def test_every_precision_in_plane_order():
    seq = TileSequencer("bitserial", 3)
    slots = chunk_slots(3)
    commands, want = [], []
    for wb in range(1, 9):
        for ab in range(1, 9):
            chunks = 1 + (wb + ab) % 3
            enc = (Encoding.SIGNED, Encoding.ODD, Encoding.UNSIGNED)[(wb * ab) % 3]
            a_signed = (wb + ab) % 2
            commands.append({"w_bits_m1": wb - 1, "a_bits_m1": ab - 1, "w_enc": enc,
                             "a_signed": a_signed, "last_chunk": chunks - 1})
            want.append(reference(wb, ab, chunks, enc, a_signed, slots))
    got = run_sequencer(seq, commands)
    for cmd, g, w in zip(commands, got, want):
        assert len(g) == len(w)
        assert g == w, cmd


def test_bitparallel_is_one_step_per_chunk():
    seq = TileSequencer("bitparallel", 5)
    got = run_sequencer(seq, [{"w_bits_m1": 7, "a_bits_m1": 7, "w_enc": Encoding.SIGNED,
                               "a_signed": 1, "last_chunk": 4}])[0]
    assert got == [(c, c, int(c == 0), int(c == 4), 0, 0, 0) for c in range(5)]


@pytest.mark.parametrize("args,message", [
    (("bitserial", 0), "max_chunks must be a positive integer, not 0"),
    (("bitserial", "4"), "max_chunks must be a positive integer, not '4'"),
    (("wide", 4), "family must be one of"),
])
def test_bad_parameters(args, message):
    with pytest.raises(ValueError, match=message):
        TileSequencer(*args)
