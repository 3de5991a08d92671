# amaranth: UnusedElaboratable=no
"""The host link's board end on Amaranth's simulator, driven through its UART pins exactly as a
host would (8N1 at ``divisor`` cycles per bit): every request type against the accelerator's
real register slave and a memory with random latency, and every way a request can go wrong
(checksum, command, length, address, refused register, a request cut short, bytes at the wrong
time); each answered by one reply, none hanging the bridge."""

from __future__ import annotations

import random
import struct

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from bitmill import hostlink
from bitmill.config import AccelConfig
from bitmill.hostlink import Command, Status, parse_reply, request
from bitmill.hw.host_bridge import HostBridge
from bitmill.hw.host_link import HostLink
from bitmill.hw.host_regs import ADDR_WIDTH, HostRegisters
from bitmill.hw.regmap import ID_VALUE, register
from bitmill.hw.uart import BITS_PER_BYTE, UartRx, UartTx, divisor_for
from tests.hw import uart_pins

DIVISOR = 4
MEM_BYTES = 1024
TIMEOUT = hostlink.TIMEOUT_BYTES * BITS_PER_BYTE * DIVISOR


class Bench(wiring.Component):
    """The link in front of the accelerator's register slave; memory stays outside."""

    def __init__(self):
        self.link = HostLink(DIVISOR, MEM_BYTES, ADDR_WIDTH)
        self.regs = HostRegisters(AccelConfig.resolve("tiny"))
        super().__init__({"rx": wiring.In(1, init=1), "tx": wiring.Out(1, init=1),
                          "mem": wiring.Out(self.link.signature.members["mem"].signature)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.link, m.submodules.regs = self.link, self.regs
        wiring.connect(m, self.link.regs, self.regs.host)
        wiring.connect(m, self.link.mem, wiring.flipped(self.mem))
        m.d.comb += [self.link.rx.eq(self.rx), self.tx.eq(self.link.tx)]
        return m


def run(script, memory: bytearray, seed=0, divisor=DIVISOR):
    """Run ``script(host)`` against a fresh bench; ``memory`` is the board memory."""
    dut = Bench()
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    rng = random.Random(seed)
    received: list[int] = []

    async def memory_model(ctx):
        wait = 0
        async for _, _, valid, write, addr, wdata in ctx.tick().sample(
                dut.mem.valid, dut.mem.write, dut.mem.addr, dut.mem.wdata):
            ctx.set(dut.mem.ack, 0)
            if valid and wait == 0:
                wait = rng.randint(1, 4)
            if valid:
                wait -= 1
                if wait == 0:
                    if write:
                        memory[addr] = wdata
                    ctx.set(dut.mem.rdata, memory[addr])
                    ctx.set(dut.mem.ack, 1)

    class Host:
        def __init__(self, ctx):
            self.ctx = ctx

        async def send(self, data: bytes, bit_cycles=divisor):
            await uart_pins.send(self.ctx, dut.rx, data, bit_cycles)

        async def reply(self, max_cycles=4 * TIMEOUT):
            """The next reply (parsed), waiting at most ``max_cycles``."""
            for _ in range(max_cycles):
                try:
                    r, n = parse_reply(bytes(received))
                    del received[:n]
                    return r
                except hostlink.ReplyError:
                    await self.ctx.tick()
            raise AssertionError(f"no reply within {max_cycles} cycles; received {bytes(received).hex()}")

        async def call(self, command, address=0, length=0, payload=b""):
            await self.send(request(command, address, length, payload))
            return await self.reply()

        async def idle(self, cycles):
            await self.ctx.tick().repeat(cycles)

        @property
        def pending(self) -> bytes:
            return bytes(received)

    async def bench(ctx):
        await script(Host(ctx))

    sim.add_process(memory_model)
    sim.add_testbench(uart_pins.receiver(dut.tx, divisor, received), background=True)
    sim.add_testbench(bench)
    sim.run()


def _word(v: int) -> bytes:
    return struct.pack("<I", v)


def test_every_request_type():
    memory = bytearray(random.Random(1).randbytes(MEM_BYTES))
    block = random.Random(2).randbytes(hostlink.MAX_BLOCK)
    prog = register("PROG_ADDR").offset

    async def script(host):
        assert await host.call(Command.PING) == hostlink.Reply(Status.OK, bytes([hostlink.VERSION]))
        assert await host.call(Command.READ_REG, register("ID").offset, 4) == hostlink.Reply(Status.OK, _word(ID_VALUE))
        assert await host.call(Command.WRITE_REG, prog, 4, _word(0xDEADBEE0)) == hostlink.Reply(Status.OK, b"")
        assert await host.call(Command.READ_REG, prog, 4) == hostlink.Reply(Status.OK, _word(0xDEADBEE0))
        addr = MEM_BYTES - hostlink.MAX_BLOCK - 3
        assert await host.call(Command.WRITE_MEM, addr, len(block), block) == hostlink.Reply(Status.OK, b"")
        assert memory[addr:addr + len(block)] == block
        assert await host.call(Command.READ_MEM, addr - 5, 9) == hostlink.Reply(Status.OK, bytes(memory[addr - 5:addr + 4]))
        assert await host.call(Command.READ_MEM, MEM_BYTES - 1, 1) == hostlink.Reply(Status.OK, bytes(memory[-1:]))

    run(script, memory)


def test_refused_requests_change_nothing():
    memory = bytearray(MEM_BYTES)
    prog = register("PROG_ADDR").offset

    async def script(host):
        async def expect(data: bytes, status: Status):
            await host.send(data)
            assert await host.reply() == hostlink.Reply(status, b""), (data.hex(), status)

        good = request(Command.WRITE_MEM, 16, 4, b"\x01\x02\x03\x04")
        await expect(good[:-1] + bytes([good[-1] ^ 1]), Status.BAD_CRC)
        bad_reg = request(Command.WRITE_REG, prog, 4, _word(7))
        await expect(bad_reg[:-2] + bytes([bad_reg[-2] ^ 0x80, bad_reg[-1]]), Status.BAD_CRC)
        await expect(_raw(9, 0, 0), Status.BAD_COMMAND)
        await expect(request(Command.READ_REG, prog, 2), Status.BAD_LENGTH)
        await expect(request(Command.READ_MEM, 0, 0), Status.BAD_LENGTH)
        await expect(request(Command.READ_MEM, 0, hostlink.MAX_BLOCK + 1), Status.BAD_LENGTH)
        await expect(request(Command.PING, 0, 1), Status.BAD_LENGTH)
        await expect(request(Command.WRITE_MEM, 0, 0), Status.BAD_LENGTH)            # drained, then answered
        await expect(request(Command.WRITE_REG, prog, 3, b"abc"), Status.BAD_LENGTH)
        await expect(request(Command.READ_MEM, MEM_BYTES - 3, 4), Status.BAD_ADDRESS)
        await expect(request(Command.WRITE_MEM, MEM_BYTES, 1, b"x"), Status.BAD_ADDRESS)
        await expect(request(Command.READ_REG, prog + 2, 4), Status.BAD_ADDRESS)
        await expect(request(Command.READ_REG, 1 << ADDR_WIDTH, 4), Status.BAD_ADDRESS)
        await expect(request(Command.WRITE_REG, register("ID").offset, 4, _word(1)), Status.BUS_ERROR)
        r = await host.call(Command.READ_REG, register("CTRL").offset, 4)                 # write-only
        assert r.status is Status.BUS_ERROR
        assert await host.call(Command.READ_REG, prog, 4) == hostlink.Reply(Status.OK, _word(0))
        assert memory == bytearray(MEM_BYTES)

    run(script, memory)


def _raw(command: int, address: int, length: int) -> bytes:
    body = struct.pack("<BIH", command, address, length)
    return bytes([hostlink.SYNC_REQUEST]) + body + bytes([hostlink.crc8(body)])


def test_cut_requests_and_stray_bytes_never_hang_the_bridge():
    memory = bytearray(MEM_BYTES)

    async def script(host):
        # cut short in the header, in the payload, before the checksum: TIMEOUT each
        for cut in (request(Command.READ_REG, 0, 4)[:3], request(Command.WRITE_MEM, 0, 8, bytes(8))[:12],
                    request(Command.PING)[:-1]):
            await host.send(cut)
            assert await host.reply() == hostlink.Reply(Status.TIMEOUT, b"")
        assert memory == bytearray(MEM_BYTES)
        # bytes other than the sync byte between requests are dropped
        await host.send(b"\x00\x11\xff\x5a")
        assert await host.call(Command.PING) == hostlink.Reply(Status.OK, bytes([hostlink.VERSION]))
        # bytes sent while a reply goes out are dropped; the next request is answered
        await host.send(request(Command.READ_MEM, 0, 64))
        await host.idle(20 * BITS_PER_BYTE * DIVISOR)
        await host.send(b"\xa5\xa5\x00\x01")                  # lands while the 69-byte reply is sent
        r = await host.reply()
        assert r == hostlink.Reply(Status.OK, bytes(64))
        await host.idle(2 * TIMEOUT)
        assert host.pending == b""
        assert await host.call(Command.PING) == hostlink.Reply(Status.OK, bytes([hostlink.VERSION]))
        # a byte with a low stop bit is dropped (framing error), then requests work
        await host.send(b"\x00", bit_cycles=DIVISOR)
        assert await host.call(Command.READ_REG, register("ID").offset, 4) == hostlink.Reply(Status.OK, _word(ID_VALUE))

    run(script, memory)


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_uart_loopback_every_byte(divisor):
    """UartTx into UartRx: every byte value, back to back, at several divisors."""
    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx = UartTx(divisor), UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    sim = Simulator(m)
    sim.add_clock(1e-8)
    got = []

    async def sender(ctx):
        for b in range(256):
            ctx.set(tx.data.payload, b)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
        ctx.set(tx.data.valid, 0)
        await ctx.tick().repeat(3 * BITS_PER_BYTE * divisor)

    async def receiver(ctx):
        async for _, _, valid, data, err in ctx.tick().sample(rx.data.valid, rx.data.payload, rx.frame_error):
            assert not err
            if valid:
                got.append(data)

    sim.add_testbench(sender)
    sim.add_process(receiver)
    sim.run()
    assert got == list(range(256))


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="divisor must be an integer >= 4"):
        UartTx(3)
    with pytest.raises(ValueError, match="timeout must be an integer >= 1"):
        HostBridge(1024, 8, 0)
    assert divisor_for(48_000_000, 3_000_000) == 16
    with pytest.raises(ValueError, match="3500000 Bd is not 50000000 Hz divided by an integer"):
        divisor_for(50_000_000, 3_500_000)
