"""ISA: encode/decode round trip of every opcode, range checks, binary programs."""

import pytest
from hypothesis import given, settings, strategies as st

from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from dataclasses import replace

from bitmill.isa import (INSTR_BITS, QUEUE_OF, Deps, Gemm, Load, Opcode, Program, Queue, Refill, Setup,
                         Store, Sync, Vec, decode, encode, layout)
from bitmill.numerics import Encoding
from tests.conftest import REPO

CFG = AccelConfig.load(REPO / "configs/accel/ecp5-85f.yaml")
TINY = AccelConfig.load(REPO / "configs/accel/tiny.yaml")

deps = st.builds(Deps, st.booleans(), st.booleans(), st.booleans(), st.booleans())
px = st.integers(0, 4095)
instructions = st.one_of(
    st.builds(Setup, st.integers(1, 7), st.integers(1, 3), st.integers(0, 3), px, px,
              st.integers(1, 8191), px, st.integers(1, 8191), px, px, st.integers(1, 8),
              st.integers(1, 8), st.sampled_from(list(Encoding)), st.sampled_from(list(Encoding)),
              st.integers(1, 32),
              st.booleans(), st.booleans(), deps),
    st.builds(Load, st.integers(0, 3), st.integers(0, 1), st.integers(0, 2 ** 32 - 1),
              st.integers(0, 131072), st.integers(0, 131072), deps),
    st.builds(Gemm, st.integers(0, 1), st.integers(0, 1), st.integers(0, 1), st.integers(0, 8191),
              st.integers(0, 8191), st.integers(0, 2 ** 20 - 1), st.integers(0, 2 ** 20 - 1),
              st.integers(0, 1), st.integers(0, 8191), deps),
    st.builds(Vec, st.integers(0, 2), st.integers(0, 1), st.integers(0, 8 * 32768), st.integers(0, 1),
              st.integers(0, 1), st.integers(1, 8), st.sampled_from(list(Encoding)), deps=deps),
    st.builds(Store, st.integers(0, 1), st.integers(0, 2 ** 32 - 1), st.integers(0, 131072), deps),
    st.builds(Sync, deps),
    st.builds(Refill, st.integers(0, 3 * CFG.queue_depth)),
)


@settings(max_examples=300, deadline=None)
@given(instructions)
def test_round_trip_every_opcode(instr):
    value = encode(instr, CFG)
    assert 0 <= value < 2 ** INSTR_BITS
    assert decode(value, CFG) == instr


def test_every_opcode_has_a_class_and_fits():
    assert {i.opcode for i in (Setup(1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, Encoding.SIGNED, Encoding.UNSIGNED, 8, False, False),
                               Load(0, 0, 0, 0), Gemm(0, 0, 0, 0, 1, 0, 1), Vec(0, 0, 1),
                               Store(0, 0, 0), Sync(), Refill(1))} == set(Opcode)
    assert layout(CFG).size <= INSTR_BITS and layout(TINY).size <= INSTR_BITS


def test_field_widths_follow_the_config():
    # the tiny config's buffers are 4 KiB: a 5000-byte load does not fit its nbytes field
    with pytest.raises(BitmillError, match="out of range|cannot encode"):
        encode(Load(1, 0, 0, 50000), TINY)
    with pytest.raises(BitmillError):
        encode(Gemm(0, 0, 0, 0, 1, 0, 1, w_row=2 ** 13), TINY)   # past the 13-bit channel field
    encode(Load(1, 0, 0, 4096), TINY)


def test_binary_program_round_trip():
    prog = Program((Load(1, 0, 64, 100, deps=Deps(push_next=True)),
                    Setup(3, 1, 1, 8, 8, 4, 8, 4, 0, 0, 4, 4, Encoding.SIGNED, Encoding.UNSIGNED, 8, False, True),
                    Gemm(0, 0, 0, 0, 2, 0, 64, deps=Deps(pop_prev=True, push_next=True)),
                    Store(0, 4096, 64, deps=Deps(pop_prev=True))), b"\0" * 16, CFG)
    blob = prog.encoded()
    assert len(blob) == 4 * INSTR_BITS // 8
    assert Program.from_binary(blob, prog.memory, CFG).instructions == prog.instructions
    with pytest.raises(BitmillError, match="not a multiple"):
        Program.from_binary(blob[:-1], prog.memory, CFG)


def test_field_widths_follow_the_config_sizes():
    # a config with larger feature maps and channel counts widens the pixel and channel fields
    big = AccelConfig.from_dict({**TINY.to_dict(), "max_feature_size": 8000, "max_channels": 16000})
    setup = Setup(3, 1, 1, 7000, 7000, 16000, 7000, 16000, 0, 0, 4, 4, Encoding.ODD,
                  Encoding.SIGNED, 8, True, False)
    assert decode(encode(setup, big), big) == setup
    with pytest.raises(BitmillError, match=r"Setup.in_h = 7000 is out of range 0..4095 "
                                           r"\(max_feature_size of config tiny\)"):
        encode(setup, TINY)
    with pytest.raises(BitmillError, match="Vec.count = 4097 is out of range 0..4096"):
        encode(Vec(0, 0, 4097), TINY)            # more elements than a 512-byte output slot has bits
    with pytest.raises(BitmillError, match="Setup.w_bits = 9 is out of range 1..8"):
        encode(Setup(1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 9, 1, Encoding.SIGNED, Encoding.UNSIGNED, 8,
                     False, False), TINY)


def test_encodings_are_fields_of_setup_and_vec():
    setup = Setup(1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 3, 5, "odd", "unsigned", 8, False, False)
    assert (setup.w_enc, setup.a_enc) == (Encoding.ODD, Encoding.UNSIGNED)
    vec = decode(encode(Vec(0, 1, 10, b_bits=6, b_enc=Encoding.UNSIGNED), TINY), TINY)
    assert (vec.b_bits, vec.b_enc) == (6, Encoding.UNSIGNED)


def test_every_opcode_runs_in_one_queue():
    assert set(QUEUE_OF) == set(Opcode) - {Opcode.REFILL}      # REFILL is the preload's own
    assert [QUEUE_OF[op] for op in Opcode if op in QUEUE_OF] == [Queue.COMPUTE, Queue.LOAD, Queue.COMPUTE,
                                                Queue.COMPUTE, Queue.STORE, Queue.COMPUTE]
    assert [q.label for q in Queue] == ["load", "compute", "store"]


def _stream(n_loads: int, n_gemms: int):
    """A valid token stream: loads then compute instructions, each GEMM popping one load's token."""
    loads = [Load(1, 0, 64, 16, deps=Deps(push_next=True)) for _ in range(n_loads)]
    gemms = [Gemm(0, 0, 0, 0, 1, 0, 1, deps=Deps(pop_prev=True)) for _ in range(n_gemms)]
    return tuple(x for pair in zip(loads, gemms) for x in pair)


def test_a_program_longer_than_a_queue_memory_is_split_into_fills():
    cfg = replace(TINY, queue_depth=4)
    prog = Program(_stream(10, 10), b"", cfg)
    with pytest.raises(BitmillError, match="10 load-queue instructions, more than the 4"):
        prog.check_queue_depth()
    split = prog.split_into_fills()
    assert split.fills == (8, 8, 4) and split.fill_words() == (9, 9, 4)
    split.check_queue_depth()
    assert [len(r) for r in split.fill_ranges()] == [8, 8, 4]
    blob = split.encoded()
    assert len(blob) == 22 * INSTR_BITS // 8
    assert decode(int.from_bytes(blob[8 * 16:9 * 16], "little"), cfg) == Refill(9)
    back = Program.from_binary(blob, b"", cfg)
    assert back.instructions == prog.instructions and back.fills == split.fills
    fits = Program(_stream(3, 3), b"", cfg)
    assert fits.split_into_fills().fills == () and fits.fill_words() == (6,)


def test_refill_words_must_match_the_fill_that_follows():
    cfg = replace(TINY, queue_depth=4)
    blob = bytearray(Program(_stream(10, 10), b"", cfg).split_into_fills().encoded())
    blob[8 * 16:9 * 16] = encode(Refill(7), cfg).to_bytes(16, "little")
    with pytest.raises(BitmillError, match=r"REFILL word counts \[7, 4\] do not match"):
        Program.from_binary(bytes(blob), b"", cfg)
    with pytest.raises(BitmillError, match="do not partition"):
        Program(_stream(2, 2), b"", cfg, fills=(3, 2))
