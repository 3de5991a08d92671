"""The host link protocol (`bitmill.hostlink`): CRC, request and reply bytes, reply parsing."""

import pytest

from bitmill import hostlink
from bitmill.hostlink import Command, Reply, ReplyError, Status, crc8, parse_reply, reply, request


def test_crc8_is_crc8_smbus():
    assert crc8(b"123456789") == 0xF4          # the catalogued check value of poly 0x07, init 0
    assert crc8(b"") == 0 and crc8(b"\x00") == 0


def test_request_bytes():
    data = request(Command.WRITE_REG, 0x18, 4, b"\x01\x02\x03\x04")
    assert data[:8] == bytes([0xA5, 2, 0x18, 0, 0, 0, 4, 0]) and data[8:12] == b"\x01\x02\x03\x04"
    assert data[-1] == crc8(data[1:-1]) and len(data) == hostlink.REQUEST_HEADER + 4 + 1
    with pytest.raises(ValueError, match="WRITE_MEM carries 3 bytes, not 2"):
        request(Command.WRITE_MEM, 0, 3, b"ab")
    with pytest.raises(ValueError, match="address must be in 0..2"):
        request(Command.READ_MEM, 1 << 32, 1)


def test_reply_round_trip_and_bad_replies():
    data = reply(Status.OK, b"xyz") + b"tail"
    assert parse_reply(data) == (Reply(Status.OK, b"xyz"), 8)
    assert hostlink.reply_length(Command.READ_MEM, 3) == 8
    for bad, msg in ((data[:4], "at least 5 bytes"), (b"\x00" + data[1:], "starts with 0x5A"),
                     (data[:7], "announces 3 payload bytes"),
                     (data[:7] + bytes([data[7] ^ 1]), "checksum does not match"),
                     (reply(Status.OK)[:1] + b"\x09\x00\x00" + bytes([crc8(b"\x09\x00\x00")]), "unknown reply status 9")):
        with pytest.raises(ReplyError, match=msg):
            parse_reply(bad)
