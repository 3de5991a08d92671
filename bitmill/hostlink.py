"""The host link: the framed byte protocol between a host and a board over a UART, the one
definition that the bridge RTL (`bitmill.hw.host_bridge`), its benches and the host runtime use.

Every byte travels as UART 8N1 (LSB first). All multi-byte fields are little-endian.

Request (host to board)::

    SYNC_REQUEST  command  address[4]  length[2]  payload[n]  crc

- ``command`` (`Command`): READ_REG and WRITE_REG move one 32-bit register of the accelerator's
  AXI4-Lite host port (``length`` must be 4; WRITE_REG carries the 4 data bytes); READ_MEM and
  WRITE_MEM move ``length`` bytes (1..`MAX_BLOCK`) at byte ``address`` of the board's memory
  (WRITE_MEM carries them); PING has ``length`` 0 and answers the protocol version.
- ``crc``: CRC-8 (polynomial x^8 + x^2 + x + 1, i.e. 0x07, initial value 0, no reflection, no
  final XOR) over every byte after the sync byte.

Reply (board to host), one per request::

    SYNC_REPLY  status  length[2]  payload[n]  crc

- ``status`` (`Status`): OK, or why the request was refused. Only an OK reply carries a
  payload: READ_REG 4 bytes, READ_MEM ``length`` bytes, PING one byte (`VERSION`); replies to
  writes carry none. ``crc`` as above, over every byte after the sync byte.
- A request whose bytes stop arriving for `TIMEOUT_BYTES` byte times is answered TIMEOUT; bytes
  that arrive while the board sends a reply, and bytes other than SYNC_REQUEST between
  requests, are dropped. So the board never hangs: every started request gets one reply.
- A bad checksum, command, length or address is found before anything is written or read: the
  request has no effect. A WRITE_MEM payload is checked only at its end, so a bad checksum
  there leaves memory unchanged too (the bridge buffers the block).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

SYNC_REQUEST = 0xA5
SYNC_REPLY = 0x5A
VERSION = 1
MAX_BLOCK = 256               # bytes of one READ_MEM / WRITE_MEM request
REGISTER_BYTES = 4
TIMEOUT_BYTES = 64            # byte times of silence that end a request
CRC_POLY = 0x07
REQUEST_HEADER = 8            # sync, command, address, length
REPLY_HEADER = 4              # sync, status, length


class Command(enum.IntEnum):
    """What a request asks for."""
    PING = 0
    READ_REG = 1
    WRITE_REG = 2
    READ_MEM = 3
    WRITE_MEM = 4


class Status(enum.IntEnum):
    """How the board answered a request."""
    OK = 0
    BAD_CRC = 1
    BAD_COMMAND = 2
    BAD_LENGTH = 3
    BAD_ADDRESS = 4
    BUS_ERROR = 5         # the register port answered SLVERR/DECERR
    TIMEOUT = 6


STATUS_DOCS = {
    Status.OK: "done",
    Status.BAD_CRC: "the request's checksum did not match",
    Status.BAD_COMMAND: "unknown command",
    Status.BAD_LENGTH: "length not allowed for the command (4 for registers, 1..MAX_BLOCK for memory)",
    Status.BAD_ADDRESS: "the memory block lies outside the board's memory, or a register address is not 4-aligned",
    Status.BUS_ERROR: "the accelerator's register port refused the access",
    Status.TIMEOUT: "the request stopped arriving before its end",
}


def crc8(data: bytes, crc: int = 0) -> int:
    """CRC-8 with polynomial `CRC_POLY` over ``data``, continuing from ``crc``."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _check_request(command: Command, address: int, payload: bytes, length: int) -> None:
    if not 0 <= address < 1 << 32:
        raise ValueError(f"address must be in 0..2**32-1, not {address}")
    if not 0 <= length < 1 << 16:
        raise ValueError(f"length must be in 0..65535, not {length}")
    if command in (Command.WRITE_REG, Command.WRITE_MEM) and len(payload) != length:
        raise ValueError(f"{command.name} carries {length} bytes, not {len(payload)}")


def request(command: Command, address: int = 0, length: int = 0, payload: bytes = b"") -> bytes:
    """The bytes of one request (no check of what the board accepts: see `Status`)."""
    command = Command(command)
    _check_request(command, address, payload, length)
    body = struct.pack("<BIH", command, address, length) + bytes(payload)
    return bytes([SYNC_REQUEST]) + body + bytes([crc8(body)])


def reply(status: Status, payload: bytes = b"") -> bytes:
    """The bytes of one reply."""
    body = struct.pack("<BH", Status(status), len(payload)) + bytes(payload)
    return bytes([SYNC_REPLY]) + body + bytes([crc8(body)])


@dataclass(frozen=True)
class Reply:
    """A reply as the host reads it."""
    status: Status
    payload: bytes


class ReplyError(Exception):
    """The bytes are not a well-formed reply."""


def parse_reply(data: bytes) -> tuple[Reply, int]:
    """The first reply in ``data`` and how many bytes it took; `ReplyError` when the bytes
    are not one (``data`` too short, bad sync, status or checksum)."""
    if len(data) < REPLY_HEADER + 1:
        raise ReplyError(f"a reply has at least {REPLY_HEADER + 1} bytes, got {len(data)}")
    if data[0] != SYNC_REPLY:
        raise ReplyError(f"a reply starts with 0x{SYNC_REPLY:02X}, not 0x{data[0]:02X}")
    status, length = struct.unpack_from("<BH", data, 1)
    end = REPLY_HEADER + length
    if len(data) < end + 1:
        raise ReplyError(f"the reply announces {length} payload bytes, got {len(data) - REPLY_HEADER - 1}")
    if crc8(data[1:end]) != data[end]:
        raise ReplyError("the reply's checksum does not match")
    try:
        status = Status(status)
    except ValueError:
        raise ReplyError(f"unknown reply status {status}") from None
    return Reply(status, bytes(data[REPLY_HEADER:end])), end + 1


def reply_length(command: Command, length: int) -> int:
    """Bytes of the OK reply to a request."""
    payload = {Command.PING: 1, Command.READ_REG: REGISTER_BYTES, Command.READ_MEM: length}.get(command, 0)
    return REPLY_HEADER + payload + 1
