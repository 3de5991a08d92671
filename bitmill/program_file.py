"""``program.bin``: the encoded instruction stream behind a header that makes a damaged,
truncated or foreign file an error instead of another program.

Header (little-endian, `HEADER_BYTES` bytes): magic ``BMPG``, format version (u16), bytes per
instruction (u16), fingerprint of the accelerator configuration (8 bytes of SHA-256 over its
canonical JSON), word count (u32: the instructions and the REFILL words between fills), CRC-32 of the instruction bytes (u32). Every
single-bit error anywhere in the file is detected.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib

from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.isa import INSTR_BITS, Program

PROGRAM_ALIGN = 64           # the instructions' address in a memory image: a multiple of this
MAGIC = b"BMPG"
VERSION = 1
_HEADER = struct.Struct("<4sHH8sII")
HEADER_BYTES = _HEADER.size


def config_fingerprint(cfg: AccelConfig) -> bytes:
    """8 bytes that change with every field of ``cfg``."""
    canonical = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()[:8]


def pack_program(program: Program) -> bytes:
    """Header + `Program.encoded` bytes."""
    body = program.encoded()
    return _HEADER.pack(MAGIC, VERSION, INSTR_BITS // 8, config_fingerprint(program.config),
                        len(body) // (INSTR_BITS // 8), zlib.crc32(body)) + body


def unpack_program(blob: bytes, memory: bytes, cfg: AccelConfig, source: str = "program.bin",
                   **records) -> Program:
    """The program in ``blob`` (written by `pack_program` for ``cfg``); ``records`` are
    passed on to `Program` (symbols, segments)."""
    if len(blob) < HEADER_BYTES:
        raise BitmillError(f"{source}: {len(blob)} bytes, shorter than the {HEADER_BYTES}-byte header")
    magic, version, width, fingerprint, count, crc = _HEADER.unpack_from(blob)
    body = blob[HEADER_BYTES:]
    if magic != MAGIC:
        raise BitmillError(f"{source}: not a bitmill program (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise BitmillError(f"{source}: program format version {version}; this bitmill reads version {VERSION}")
    if width != INSTR_BITS // 8:
        raise BitmillError(f"{source}: {width} bytes per instruction, this ISA has {INSTR_BITS // 8}")
    if fingerprint != config_fingerprint(cfg):
        raise BitmillError(f"{source}: compiled for another accelerator configuration than {cfg.name}; "
                           f"compile again with this configuration")
    if len(body) != count * width:
        raise BitmillError(f"{source}: {len(body)} bytes of instructions, the header says {count} "
                           f"instructions ({count * width} bytes): truncated or padded")
    if zlib.crc32(body) != crc:
        raise BitmillError(f"{source}: checksum mismatch (CRC-32 {zlib.crc32(body):08x}, header "
                           f"{crc:08x}): the file is damaged")
    return Program.from_binary(body, memory, cfg, **records)


def program_image(program: Program) -> tuple[bytes, int]:
    """The memory image a run starts from: the program's memory, then its instructions at a
    `PROGRAM_ALIGN`-byte aligned address; (image, program address)."""
    addr = -(-len(program.memory) // PROGRAM_ALIGN) * PROGRAM_ALIGN
    return program.memory + bytes(addr - len(program.memory)) + program.encoded(), addr
