"""program.bin: header, checksum, every single-bit error refused."""

import pytest

from bitmill.config import AccelConfig
from bitmill.compiler import zoo
from bitmill.compiler.pipeline import compile_net
from bitmill.errors import BitmillError
from bitmill.program_file import HEADER_BYTES, pack_program, unpack_program
from tests.conftest import REPO

CFG = AccelConfig.load(REPO / "configs" / "accel" / "sim-4x4-k16.yaml")


@pytest.fixture(scope="module")
def program():
    return compile_net(zoo.build("resnet8", "w3a4", seed=2), CFG).program


def test_round_trip(program):
    blob = pack_program(program)
    assert len(blob) == HEADER_BYTES + 16 * len(program.instructions)
    back = unpack_program(blob, program.memory, CFG)
    assert back.instructions == program.instructions


def test_every_single_bit_flip_is_refused(program):
    blob = bytearray(pack_program(program))
    # the header and the first and last instructions, every bit
    positions = list(range(HEADER_BYTES + 32)) + list(range(len(blob) - 16, len(blob)))
    for byte in positions:
        for bit in range(8):
            blob[byte] ^= 1 << bit
            with pytest.raises(BitmillError, match="program.bin"):
                unpack_program(bytes(blob), program.memory, CFG)
            blob[byte] ^= 1 << bit


@pytest.mark.parametrize("damage,message", [
    (lambda b: b[:10], "shorter than the 24-byte header"),
    (lambda b: b[:-16], "truncated or padded"),
    (lambda b: b + bytes(16), "truncated or padded"),
    (lambda b: b"ELF!" + b[4:], "not a bitmill program"),
])
def test_damaged_files(program, damage, message):
    with pytest.raises(BitmillError, match=message):
        unpack_program(damage(pack_program(program)), program.memory, CFG)


def test_program_of_another_configuration_is_refused(program):
    other = AccelConfig.from_dict({**CFG.to_dict(), "clock_mhz": CFG.clock_mhz + 1})
    with pytest.raises(BitmillError, match="another accelerator configuration"):
        unpack_program(pack_program(program), program.memory, other)


def test_a_program_in_fills_round_trips_with_its_refill_words():
    from dataclasses import replace
    cfg = replace(CFG, queue_depth=40)
    prog = compile_net(zoo.build("resnet8", zoo.BitSpec(4, 4, first_last_bits=8)), cfg).program
    assert len(prog.fills) >= 2
    blob = pack_program(prog)
    assert len(blob) == HEADER_BYTES + 16 * sum(prog.fill_words())
    back = unpack_program(blob, prog.memory, cfg)
    assert back.instructions == prog.instructions and back.fills == prog.fills
