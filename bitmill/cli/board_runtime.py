"""The host runtime of a board: a compiled network loaded once through the host link
(`bitmill.hostlink`), then per image its input written, the program started, its end awaited and
its logits and cycle counter read.

The steps are generators of link calls (``(command, address, length, payload)``) that receive
each call's `Reply`, so one runtime drives a real board through a serial port (`run_sync`)
and the RTL in a simulator (a testbench awaits each call and sends the reply in). Every reply
other than OK raises `BoardError` naming the call.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from bitmill import hostlink
from bitmill.errors import BitmillError
from bitmill.geometry import from_nhwc_rows, to_nhwc_rows
from bitmill.hostlink import Command, Reply, Status
from bitmill.hw.regmap import ID_VALUE, ErrorFlag, register, shape_value
from bitmill.isa import Program
from bitmill.packing import Region, pack_rows, unpack_rows
from bitmill.program_file import program_image

Call = tuple[Command, int, int, bytes]
Steps = Generator[Call, Reply, object]
_STATUS = register("STATUS")
STATUS_BUSY, STATUS_DONE, STATUS_ERROR = (_STATUS.field(n).mask for n in ("BUSY", "DONE", "ERROR"))
START = register("CTRL").field("START").insert(1)


class BoardError(BitmillError):
    """The board refused a call or reported an error."""


@dataclass(frozen=True)
class LoadedNetwork:
    """What the host sends once and what it needs per image."""

    image: bytes               # the memory image: the program's memory, then its instructions
    prog_addr: int
    prog_count: int
    shape_word: int            # the SHAPE register of the config it was compiled for
    input: Region
    input_shape: tuple[int, ...]
    output: Region
    output_shape: tuple[int, ...]


@dataclass(frozen=True)
class Inference:
    """One image's result: the output tensor (codes as the IR holds them) and the CYCLES
    register."""

    output: np.ndarray
    cycles: int


def loaded_network(program: Program, input_name: str, input_shape, output_name: str, output_shape) -> LoadedNetwork:
    """The runtime's view of a compiled program."""
    image, addr = program_image(program)
    return LoadedNetwork(image, addr, program.fill_words()[0], shape_value(program.config),
                         program.region(input_name), tuple(input_shape), program.region(output_name),
                         tuple(output_shape))


def _call(command: Command, address: int = 0, length: int = 0, payload: bytes = b"") -> Steps:
    reply = yield (command, address, length, payload)
    if reply.status is not Status.OK:
        raise BoardError(f"the board answered {reply.status.name} to {command.name} at 0x{address:X} "
                         f"({hostlink.STATUS_DOCS[reply.status]})")
    return reply.payload


def read_reg(name: str) -> Steps:
    payload = yield from _call(Command.READ_REG, register(name).offset, hostlink.REGISTER_BYTES)
    return struct.unpack("<I", payload)[0]


def write_reg(name: str, value: int) -> Steps:
    yield from _call(Command.WRITE_REG, register(name).offset, hostlink.REGISTER_BYTES, struct.pack("<I", value))


def write_mem(addr: int, data: bytes) -> Steps:
    for i in range(0, len(data), hostlink.MAX_BLOCK):
        chunk = data[i:i + hostlink.MAX_BLOCK]
        yield from _call(Command.WRITE_MEM, addr + i, len(chunk), chunk)


def read_mem(addr: int, n: int) -> Steps:
    out = bytearray()
    for i in range(0, n, hostlink.MAX_BLOCK):
        out += yield from _call(Command.READ_MEM, addr + i, min(hostlink.MAX_BLOCK, n - i))
    return bytes(out)


def load(net: LoadedNetwork) -> Steps:
    """Check the board (protocol version, ID, SHAPE against the network's config) and write the
    memory image."""
    version = yield from _call(Command.PING)
    if version != bytes([hostlink.VERSION]):
        raise BoardError(f"the board speaks host link version {version.hex()}, this runtime {hostlink.VERSION}")
    ident = yield from read_reg("ID")
    if ident != ID_VALUE:
        raise BoardError(f"ID register 0x{ident:08X}, not a bitmill accelerator (0x{ID_VALUE:08X})")
    shape = yield from read_reg("SHAPE")
    if shape != net.shape_word:
        raise BoardError(f"the board's accelerator has SHAPE 0x{shape:08X}; the network was compiled for "
                         f"0x{net.shape_word:08X}: compile it for the board's config")
    yield from write_mem(0, net.image)
    yield from write_reg("PROG_ADDR", net.prog_addr)
    yield from write_reg("PROG_COUNT", net.prog_count)
    yield from write_reg("MEM_BYTES", len(net.image))


def infer(net: LoadedNetwork, x: np.ndarray, poll: Callable[[], None] = lambda: None) -> Steps:
    """One image: input written, START, STATUS polled (``poll`` between reads), output read."""
    r = net.input
    yield from write_mem(r.addr, pack_rows(to_nhwc_rows(np.asarray(x), net.input_shape), r.bits, r.encoding))
    yield from write_reg("CTRL", START)
    while True:
        status = yield from read_reg("STATUS")
        if status & STATUS_ERROR:
            flags = yield from read_reg("ERROR")
            where = yield from read_reg("ERROR_INSTR")
            names = "|".join(f.name for f in ErrorFlag if f & flags)
            raise BoardError(f"the accelerator stopped with {names} at instruction {where}")
        if not status & STATUS_BUSY and status & STATUS_DONE:
            break
        poll()
    lo = yield from read_reg("CYCLES_LO")
    hi = yield from read_reg("CYCLES_HI")
    o = net.output
    blob = yield from read_mem(o.addr, o.nbytes)
    rows = unpack_rows(blob, o.rows, o.row_codes, o.bits, o.encoding)
    return Inference(from_nhwc_rows(rows, net.output_shape), hi << 32 | lo)


def run_sync(steps: Steps, call: Callable[[Command, int, int, bytes], Reply]):
    """Drive ``steps`` with a blocking ``call``; the steps' result."""
    try:
        request = next(steps)
        while True:
            request = steps.send(call(*request))
    except StopIteration as done:
        return done.value


class SerialLink:
    """The host link over a serial port (pyserial): one request, then its reply."""

    def __init__(self, port, timeout_s: float = 2.0):
        self.port, self.timeout_s = port, timeout_s

    def call(self, command: Command, address: int, length: int, payload: bytes) -> Reply:
        self.port.write(hostlink.request(command, address, length, payload))
        self.port.flush()
        buf, deadline = bytearray(), time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            buf += self.port.read(max(1, getattr(self.port, "in_waiting", 0)))
            while buf and buf[0] != hostlink.SYNC_REPLY:       # stray bytes before a reply
                del buf[0]
            if len(buf) < hostlink.REPLY_HEADER + 1 \
                    or len(buf) < hostlink.REPLY_HEADER + 1 + int.from_bytes(buf[2:4], "little"):
                continue                                       # not all there yet
            try:
                return hostlink.parse_reply(bytes(buf))[0]
            except hostlink.ReplyError as e:
                raise BoardError(f"a garbled reply to {command.name}: {e}") from None
        raise BoardError(f"no reply to {command.name} within {self.timeout_s:g} s "
                         f"(got {len(buf)} bytes): is the board on this port and configured?")
