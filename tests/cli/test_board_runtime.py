"""The host runtime's serial link against a scripted port: a reply after stray bytes and in
pieces, a garbled reply, silence; and the runtime's refusal of a board that is not the one the
network was compiled for."""

import struct

import pytest

from bitmill import hostlink
from bitmill.cli import board_runtime as rt
from bitmill.hostlink import Command, Reply, Status
from bitmill.hw.regmap import ID_VALUE


class ScriptedPort:
    """Answers each write with the next scripted bytes, a few at a time."""

    def __init__(self, answers):
        self.answers, self.written, self.pending = list(answers), [], b""
        self.in_waiting = 0

    def write(self, data):
        self.written.append(bytes(data))
        self.pending += self.answers.pop(0) if self.answers else b""

    def flush(self):
        pass

    def read(self, n):
        out, self.pending = self.pending[:3], self.pending[3:]
        return out


def test_a_reply_after_stray_bytes_in_pieces():
    port = ScriptedPort([b"\x00\xff" + hostlink.reply(Status.OK, b"abcdef")])
    link = rt.SerialLink(port, timeout_s=1)
    assert link.call(Command.READ_MEM, 0, 6, b"") == Reply(Status.OK, b"abcdef")
    assert port.written == [hostlink.request(Command.READ_MEM, 0, 6)]


def test_garbled_and_missing_replies_are_board_errors():
    bad = bytearray(hostlink.reply(Status.OK, b"xy"))
    bad[-1] ^= 1
    with pytest.raises(rt.BoardError, match="a garbled reply to PING: the reply's checksum does not match"):
        rt.SerialLink(ScriptedPort([bytes(bad)]), timeout_s=1).call(Command.PING, 0, 0, b"")
    with pytest.raises(rt.BoardError, match=r"no reply to PING within 0.2 s"):
        rt.SerialLink(ScriptedPort([]), timeout_s=0.2).call(Command.PING, 0, 0, b"")


def test_load_refuses_a_board_with_another_accelerator():
    net = rt.LoadedNetwork(b"\x00" * 8, 0, 0, 0x1234, None, (), None, ())
    answers = {Command.PING: Reply(Status.OK, bytes([hostlink.VERSION]))}

    def call(command, address, length, payload):
        if command == Command.READ_REG:
            return Reply(Status.OK, struct.pack("<I", ID_VALUE if address == 0 else 0x9999))
        return answers[command]
    with pytest.raises(rt.BoardError, match="SHAPE 0x00009999; the network was compiled for 0x00001234"):
        rt.run_sync(rt.load(net), call)
    with pytest.raises(rt.BoardError, match="answered BAD_ADDRESS to WRITE_MEM at 0x0"):
        rt.run_sync(rt.write_mem(0, b"x"), lambda *a: Reply(Status.BAD_ADDRESS, b""))


def test_random_images_cover_any_input_grid_and_carry_no_labels():
    import argparse

    from bitmill.cli.board import _images
    from bitmill.compiler import zoo
    graph = zoo.build("resnet18", zoo.BitSpec.parse("w4a4", first_last_bits=8), seed=0)
    ds = _images(argparse.Namespace(dataset="random", images=2, seed=3), graph)
    t = graph.input.out
    assert ds.images.shape == (2,) + t.shape and (ds.labels == -1).all() and ds.name == "random[2]"
    assert ds.images.min() >= t.range[0] and ds.images.max() <= t.range[1]
    again = _images(argparse.Namespace(dataset="random", images=2, seed=3), graph)
    assert (again.images == ds.images).all()
